// Start-up: the configuration, the sign-in callback, then the page (or the sign-in screen).
import { render } from 'preact';

import { App } from './app';
import { CALLBACK_PATH, loadConfig, signIn, userManager, type ReturnTo } from './auth';
import { LANGS, WORDS, langFromBrowser, type Lang } from './i18n';
import './styles.css';

function preferredLang(): Lang {
  const fromUrl = new URLSearchParams(window.location.search).get('lang');
  const stored = (() => {
    try {
      return window.localStorage.getItem('activity-log.lang');
    } catch {
      return null;
    }
  })();
  return LANGS.find((l) => l === fromUrl) ?? LANGS.find((l) => l === stored) ?? langFromBrowser(navigator.languages ?? [navigator.language]);
}

function Landing({ lang, onSignIn, problem }: { lang: Lang; onSignIn: () => void; problem?: string }) {
  const t = WORDS[lang];
  return (
    <main class="page landing">
      <h1>{t.title}</h1>
      {problem && (
        <p class="error" role="alert">
          <strong>{t.signInFailed}:</strong> {problem}
        </p>
      )}
      <p>{t.signInPrompt}</p>
      <button type="button" onClick={onSignIn}>
        {t.signIn}
      </button>
    </main>
  );
}

async function start() {
  const root = document.getElementById('app');
  if (!root) return;
  const lang = preferredLang();
  document.documentElement.lang = lang;
  let um;
  let config;
  try {
    config = await loadConfig();
    um = userManager(config);
  } catch (e) {
    render(<Landing lang={lang} onSignIn={() => window.location.reload()} problem={String(e)} />, root);
    return;
  }
  let problem: string | undefined;
  if (window.location.pathname === CALLBACK_PATH) {
    try {
      const user = await um.signinRedirectCallback();
      performance.mark('signed-in');
      const back = (user.state as ReturnTo | undefined)?.returnTo ?? '/';
      window.history.replaceState(null, '', back.startsWith('/') && !back.startsWith('//') ? back : '/');
    } catch (e) {
      problem = e instanceof Error ? e.message : String(e);
      window.history.replaceState(null, '', '/');
    }
  }
  const user = await um.getUser();
  if (!user || user.expired) {
    if (user) await um.removeUser();
    render(<Landing lang={lang} onSignIn={() => signIn(um)} problem={problem} />, root);
    return;
  }
  render(<App um={um} user={user} fallbackLang={lang} signingKeyPem={config.signingPublicKeyPem} />, root);
}

void start();
