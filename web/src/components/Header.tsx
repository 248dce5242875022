// The bar above the page: the product, the language, who is signed in, and Sign out.
import { LANGS, LANG_NAMES, type Lang, type Words } from '../i18n';

export function Header({ t, lang, onLang, userName, onSignOut }: { t: Words; lang: Lang; onLang: (l: Lang) => void; userName: string; onSignOut: () => void }) {
  return (
    <header class="top">
      <span class="brand">activity-log</span>
      <div class="top-right">
        <label class="inline" for="language">
          {t.language}
        </label>
        <select id="language" value={lang} onChange={(e) => onLang((e.target as HTMLSelectElement).value as Lang)}>
          {LANGS.map((l) => (
            <option value={l} key={l} lang={l}>
              {LANG_NAMES[l]}
            </option>
          ))}
        </select>
        <span class="who">
          {t.signedInAs} <strong>{userName}</strong>
        </span>
        <button type="button" class="secondary" onClick={onSignOut}>
          {t.signOut}
        </button>
      </div>
    </header>
  );
}
