// Verify and, beside it, what it is doing, found, or why it could not.
import type { Verify, VerifyState } from '../hooks/useVerify';
import type { Words } from '../i18n';
import { tone, verifyMessage } from '../verify';

export function VerifyBar({ verify, t, disabled }: { verify: Verify; t: Words; disabled: boolean }) {
  return (
    <div class="verify-line">
      <button type="button" class="secondary" onClick={verify.start} disabled={verify.state.state === 'running' || disabled}>
        {t.verify}
      </button>
      <VerifyStatus state={verify.state} t={t} />
    </div>
  );
}

/** The live region beside Verify: working, what it found, or why it could not. */
function VerifyStatus({ state, t }: { state: VerifyState; t: Words }) {
  const [text, cls] =
    state.state === 'idle'
      ? ['', undefined]
      : state.state === 'running'
        ? [t.verifying, undefined]
        : state.state === 'error'
          ? [t.verifyError(state.message), 'error']
          : [verifyMessage(state.outcome, t), { passed: 'verify-ok', neutral: undefined, failed: 'error' }[tone(state.outcome)]];
  return (
    <p class={cls ? `verify-status ${cls}` : 'verify-status'} role="status">
      {text}
    </p>
  );
}
