// The local OpenID Connect provider: node-oidc-provider with the demo users of users.json, a
// sign-in form, and no consent screen for the page's own client. Development only.
//
// Its access tokens are what the API's JWT authorizer accepts in AWS: RS256 JWTs for the
// audience LOCAL_OIDC_AUDIENCE with the claims sub, partner_id and roles, signed with the
// development key (signing-key.pem, whose public half is jwks.json, which the functions read).
//
// Settings (scripts/lib.sh sets them from scripts/local.env): ACTIVITY_LOG_IDP_PORT,
// ACTIVITY_LOG_WEB_PORT, LOCAL_OIDC_AUDIENCE, LOCAL_OIDC_CLIENT_ID.
import { createPrivateKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import Provider, { errors } from 'oidc-provider';

const here = dirname(fileURLToPath(import.meta.url));
const env = (name, fallback) => process.env[name] || fallback;
const port = Number(env('ACTIVITY_LOG_IDP_PORT', '9100'));
const webOrigin = `http://127.0.0.1:${env('ACTIVITY_LOG_WEB_PORT', '8080')}`;
const issuer = `http://127.0.0.1:${port}`;
const audience = env('LOCAL_OIDC_AUDIENCE', 'api://activity-log');
const clientId = env('LOCAL_OIDC_CLIENT_ID', 'activity-log-web');
// The scope of the API's access tokens (the page asks for it with openid, email and profile).
const apiScope = 'activity-log';

const directory = JSON.parse(readFileSync(join(here, 'users.json'), 'utf8'));
const users = new Map(directory.users.map((u) => [u.email.toLowerCase(), u]));

const jwks = JSON.parse(readFileSync(join(here, 'jwks.json'), 'utf8'));
const signingKey = {
  ...createPrivateKey(readFileSync(join(here, 'signing-key.pem'))).export({ format: 'jwk' }),
  kid: jwks.keys[0].kid,
  alg: 'RS256',
  use: 'sig',
};

const escape = (text) => String(text).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

function page(title, body) {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escape(title)} · local identity provider</title>
<style>
  body { font: 16px/1.5 system-ui, sans-serif; background: #f3f2f1; color: #201f1e; margin: 0; }
  main { max-width: 26rem; margin: 4rem auto; background: #fff; padding: 2rem; border-radius: 4px;
         box-shadow: 0 1px 4px rgba(0,0,0,.15); }
  h1 { font-size: 1.4rem; margin-top: 0; }
  label { display: block; margin: 1rem 0 .25rem; font-weight: 600; }
  input { width: 100%; box-sizing: border-box; padding: .5rem; font: inherit; border: 1px solid #605e5c; }
  button { margin-top: 1.5rem; padding: .5rem 1.5rem; font: inherit; background: #0f6cbd; color: #fff;
           border: 0; border-radius: 2px; cursor: pointer; }
  button.secondary { background: #fff; color: #0f6cbd; border: 1px solid #0f6cbd; margin-left: .5rem; }
  .error { color: #a4262c; font-weight: 600; }
  details { margin-top: 1.5rem; color: #605e5c; font-size: .9rem; }
  code { font-size: .85rem; }
</style>
</head>
<body><main>${body}</main></body>
</html>`;
}

function loginPage(uid, { login = '', error = '' } = {}) {
  const demo = directory.users
    .map((u) => `<li><code>${escape(u.email)}</code> — ${escape(u.partner)}, ${escape(u.roles.join(', '))}</li>`)
    .join('');
  return page('Sign in', `
<h1>Sign in</h1>
<p>Local identity provider of activity-log.</p>
${error ? `<p class="error" role="alert">${escape(error)}</p>` : ''}
<form method="post" action="/interaction/${escape(uid)}/login" autocomplete="off">
  <label for="login">Email</label>
  <input id="login" name="login" type="email" autocomplete="username" required autofocus value="${escape(login)}">
  <label for="password">Password</label>
  <input id="password" name="password" type="password" autocomplete="current-password" required>
  <button type="submit">Sign in</button>
</form>
<details><summary>Demo users (password <code>${escape(directory.password)}</code>)</summary><ul>${demo}</ul></details>`);
}

const provider = new Provider(issuer, {
  clients: [{
    client_id: clientId,
    client_name: 'Activity log',
    application_type: 'web',
    token_endpoint_auth_method: 'none',
    grant_types: ['authorization_code'],
    response_types: ['code'],
    redirect_uris: [`${webOrigin}/auth/callback`],
    post_logout_redirect_uris: [`${webOrigin}/`],
  }],
  jwks: { keys: [signingKey] },
  cookies: { keys: ['local-development-only-cookie-key-0123456789'] },
  claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name'] },
  scopes: ['openid', 'email', 'profile'],
  pkce: { required: () => true },
  ttl: {
    AccessToken: 3600,
    AuthorizationCode: 60,
    IdToken: 3600,
    Interaction: 3600,
    Session: 8 * 3600,
    Grant: 8 * 3600,
  },
  features: {
    devInteractions: { enabled: false },
    resourceIndicators: {
      enabled: true,
      // The page names no resource: its tokens are for the API.
      defaultResource: async () => audience,
      useGrantedResource: async () => true,
      getResourceServerInfo: async (ctx, resource) => {
        if (resource !== audience) throw new errors.InvalidTarget();
        return {
          scope: apiScope,
          audience,
          accessTokenFormat: 'jwt',
          accessTokenTTL: 3600,
          jwt: { sign: { alg: 'RS256' } },
        };
      },
    },
    rpInitiatedLogout: {
      enabled: true,
      logoutSource: async (ctx, form) => {
        ctx.body = page('Sign out', `
<h1>Sign out</h1>
<p>Sign out of the local identity provider?</p>
${form}
<button autofocus type="submit" form="op.logoutForm" value="yes" name="logout">Sign out</button>
<button class="secondary" type="submit" form="op.logoutForm">Stay signed in</button>`);
      },
      postLogoutSuccessSource: async (ctx) => {
        ctx.body = page('Signed out', '<h1>Signed out</h1><p>You have signed out.</p>');
      },
    },
  },
  async findAccount(ctx, id) {
    const user = users.get(id);
    if (!user) return undefined;
    return {
      accountId: user.email,
      claims: async () => ({ sub: user.email, email: user.email, email_verified: true, name: user.name }),
    };
  },
  // The tenant and the roles, as the API reads them (claims partner_id and roles).
  async extraTokenClaims(ctx, token) {
    const user = users.get(token.accountId);
    return user ? { partner_id: user.partner, roles: user.roles } : undefined;
  },
  // The page is the provider's own client: its scopes are granted without a consent screen.
  async loadExistingGrant(ctx) {
    const { client, session } = ctx.oidc;
    const accountId = session.accountId;
    const grantId = ctx.oidc.result?.consent?.grantId || session.grantIdFor(client.clientId);
    if (grantId) {
      const existing = await ctx.oidc.provider.Grant.find(grantId);
      if (existing) return existing;
    }
    if (client.clientId !== clientId || !accountId) return undefined;
    const grant = new ctx.oidc.provider.Grant({ clientId: client.clientId, accountId });
    grant.addOIDCScope('openid email profile');
    grant.addResourceScope(audience, apiScope);
    await grant.save();
    return grant;
  },
  async renderError(ctx, out) {
    ctx.type = 'html';
    ctx.body = page('Error', `<h1>Something went wrong</h1><p class="error" role="alert">${escape(out.error)}: ${escape(out.error_description ?? '')}</p>`);
  },
});

async function formBody(req) {
  const chunks = [];
  let size = 0;
  for await (const chunk of req) {
    size += chunk.length;
    if (size > 16 * 1024) throw new errors.InvalidRequest('the form is too large');
    chunks.push(chunk);
  }
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

// The sign-in form: GET shows it, POST checks the email and password.
provider.use(async (ctx, next) => {
  const match = /^\/interaction\/([\w-]+)(\/login)?$/.exec(ctx.path);
  if (!match) return next();
  ctx.set('cache-control', 'no-store');
  ctx.type = 'html';
  const [, uid, login] = match;
  const details = await provider.interactionDetails(ctx.req, ctx.res);
  if (details.uid !== uid) throw new errors.SessionNotFound('interaction session not found');
  if (ctx.method === 'GET' && !login) {
    ctx.body = loginPage(uid);
    return undefined;
  }
  if (ctx.method === 'POST' && login) {
    const form = await formBody(ctx.req);
    const email = (form.get('login') ?? '').trim().toLowerCase();
    const user = users.get(email);
    if (!user || form.get('password') !== directory.password) {
      ctx.status = 401;
      ctx.body = loginPage(uid, { login: email, error: 'Wrong email or password.' });
      return undefined;
    }
    return provider.interactionFinished(ctx.req, ctx.res, { login: { accountId: user.email } }, {
      mergeWithLastSubmission: false,
    });
  }
  ctx.status = 405;
  return undefined;
});

provider.listen(port, '127.0.0.1', () => {
  console.log(`local identity provider: ${issuer} (client ${clientId}, audience ${audience}, ${users.size} users)`);
});
