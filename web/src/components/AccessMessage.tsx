// What the page says instead of the log when the session has ended or the user may not read it.
import type { Words } from '../i18n';

export function AccessMessage({ t, problem, onSignInAgain }: { t: Words; problem: 'signIn' | 'noAccess'; onSignInAgain: () => void }) {
  return (
    <main class="page">
      <h1>{t.title}</h1>
      {problem === 'signIn' ? (
        <div class="message" role="alert">
          <p>{t.sessionEnded}</p>
          <button type="button" onClick={onSignInAgain}>
            {t.signInAgain}
          </button>
        </div>
      ) : (
        <div class="message" role="alert">
          <p>
            <strong>{t.noAccess}</strong>
          </p>
          <p>{t.noAccessHint}</p>
        </div>
      )}
    </main>
  );
}
