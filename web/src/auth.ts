// Sign-in with OpenID Connect (authorization code + PKCE) by oidc-client-ts. Tokens and sign-in
// state live in sessionStorage (this tab only, gone when it closes), never in localStorage.
import { UserManager, WebStorageStateStore, type User } from 'oidc-client-ts';

/** `/config.json`, written at deploy time (scripts/deploy; scripts/dev locally). */
export interface PageConfig {
  issuer: string;
  clientId: string;
  /** The API's audience; when set, asked for as the RFC 8707 `resource` of the sign-in. */
  audience?: string;
  scope?: string;
  /** The deployed signing key's public half (PEM, the stack's SigningPublicKeyPem output): Verify
   * checks checkpoints with it, not with the key the API under check names. */
  signingPublicKeyPem?: string;
}

export const CALLBACK_PATH = '/auth/callback';

export async function loadConfig(): Promise<PageConfig> {
  const r = await fetch('/config.json', { cache: 'no-store' });
  if (!r.ok) throw new Error(`/config.json: ${r.status}`);
  const c = (await r.json()) as PageConfig;
  if (!c.issuer || !c.clientId) throw new Error('/config.json needs issuer and clientId');
  return c;
}

export function userManager(c: PageConfig): UserManager {
  const origin = window.location.origin;
  return new UserManager({
    authority: c.issuer,
    client_id: c.clientId,
    redirect_uri: `${origin}${CALLBACK_PATH}`,
    post_logout_redirect_uri: `${origin}/`,
    response_type: 'code',
    scope: c.scope ?? 'openid profile email',
    extraQueryParams: c.audience ? { resource: c.audience } : {},
    userStore: new WebStorageStateStore({ store: window.sessionStorage }),
    stateStore: new WebStorageStateStore({ store: window.sessionStorage }),
    loadUserInfo: false,
    monitorSession: false,
    automaticSilentRenew: false,
  });
}

/** Where to come back to after sign-in: the page and its view. */
export interface ReturnTo {
  returnTo: string;
}

export function signIn(um: UserManager): Promise<void> {
  const state: ReturnTo = { returnTo: window.location.pathname === CALLBACK_PATH ? '/' : window.location.pathname + window.location.search };
  return um.signinRedirect({ state });
}

export function displayName(user: User): string {
  const p = user.profile;
  return (p.name as string | undefined) ?? (p.email as string | undefined) ?? p.sub;
}
