// What the page says instead of the log when the session has ended or the user may not read it
// (and, as children, what such a user may still see: Streaming, for an AccountAdmin).
import type { ComponentChildren } from 'preact';

import type { Words } from '../i18n';

export function AccessMessage({ t, problem, onSignInAgain, children }: { t: Words; problem: 'signIn' | 'noAccess'; onSignInAgain: () => void; children?: ComponentChildren }) {
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
      {children}
    </main>
  );
}
