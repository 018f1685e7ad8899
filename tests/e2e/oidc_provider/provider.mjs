// A real, OpenID-certified authorization server (panva's oidc-provider) for Lakeplane's
// end-to-end login tests and for trying single sign-on in the sandbox. Never for production:
// the accounts are a fixed list, state lives in memory and the signing key is made at start.
//
// Usage: node provider.mjs [--port N] [--issuer URL] [--client-id ID] [--client-secret S]
//                          [--redirect-uri URL ...] [--config FILE] [--accounts FILE]
// Each option falls back to an environment variable: OIDC_PROVIDER_PORT, OIDC_PROVIDER_ISSUER,
// OIDC_PROVIDER_CLIENT_ID, OIDC_PROVIDER_CLIENT_SECRET, OIDC_PROVIDER_REDIRECT_URIS (comma
// separated), OIDC_PROVIDER_CONFIG, OIDC_PROVIDER_ACCOUNTS. Prints "listening on <issuer>" once
// it accepts connections.
//
// --config names a JSON file {port, issuer, clients: [{client_id, client_secret, redirect_uris,
// token_endpoint_auth_method}]} so several providers with their own clients can run at once;
// options given on the command line win over it. --accounts names a JSON file
// [{sub, email, verified, name, groups}] that replaces the fixed directory below and is read
// again at every sign-in, so a test can move someone out of a group between two sign-ins.

import { generateKeyPairSync, randomBytes, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { parseArgs } from 'node:util';

import Provider from 'oidc-provider';

const { values: args } = parseArgs({
  options: {
    port: { type: 'string' },
    issuer: { type: 'string' },
    'client-id': { type: 'string' },
    'client-secret': { type: 'string' },
    'redirect-uri': { type: 'string', multiple: true },
    config: { type: 'string' },
    accounts: { type: 'string' },
  },
});

const env = process.env;
const configFile = args.config ?? env.OIDC_PROVIDER_CONFIG;
const config = configFile ? JSON.parse(readFileSync(configFile, 'utf8')) : {};
const port = Number(args.port ?? env.OIDC_PROVIDER_PORT ?? config.port ?? 9400);
const issuer = args.issuer ?? env.OIDC_PROVIDER_ISSUER ?? config.issuer ?? `http://127.0.0.1:${port}`;
const accountsFile = args.accounts ?? env.OIDC_PROVIDER_ACCOUNTS ?? config.accounts;
const clientId = args['client-id'] ?? env.OIDC_PROVIDER_CLIENT_ID ?? 'lakeplane';
const clientSecret = args['client-secret'] ?? env.OIDC_PROVIDER_CLIENT_SECRET;
const redirectUris = args['redirect-uri']
  ?? (env.OIDC_PROVIDER_REDIRECT_URIS ?? 'http://127.0.0.1:8000/oidc/callback/')
    .split(',').map((uri) => uri.trim()).filter(Boolean);
// mozilla-django-oidc sends the secret in the form body unless OIDC_TOKEN_USE_BASIC_AUTH.
const defaultAuthMethod = env.OIDC_PROVIDER_TOKEN_AUTH_METHOD ?? 'client_secret_post';

const clients = (config.clients ?? (clientSecret ? [{
  client_id: clientId,
  client_secret: clientSecret,
  redirect_uris: redirectUris,
}] : [])).map((client) => ({
  grant_types: ['authorization_code'],
  response_types: ['code'],
  token_endpoint_auth_method: defaultAuthMethod,
  id_token_signed_response_alg: 'RS256',
  ...client,
}));

if (!clients.length || clients.some((client) => !client.client_secret)) {
  console.error('a client secret is required: --client-secret, OIDC_PROVIDER_CLIENT_SECRET or --config');
  process.exit(2);
}
if (!Number.isInteger(port) || port <= 0 || port > 65535) {
  console.error(`not a usable port: ${port}`);
  process.exit(2);
}

// The fixed directory. Mallory's address is unverified, which Lakeplane must refuse; Bob's is
// written in mixed case, which must still find his lower-cased local account.
const FIXED_ACCOUNTS = [
  { sub: 'u-alice', email: 'alice@example.com', verified: true, name: 'Alice Analyst' },
  { sub: 'u-mallory', email: 'mallory@example.com', verified: false, name: 'Mallory Mask' },
  { sub: 'u-bob', email: 'Bob.Builder@Example.COM', verified: true, name: 'Bob Builder' },
  { sub: 'u-carol', email: 'carol@example.com', verified: true, name: 'Carol Curator' },
  { sub: 'u-dave', email: 'dave@example.com', verified: true, name: 'Dave Departed' },
];
// One password for the whole test directory: these are made-up people on a loopback server.
const PASSWORD = env.OIDC_PROVIDER_PASSWORD ?? 'correct horse battery staple';

function accounts() {
  return accountsFile ? JSON.parse(readFileSync(accountsFile, 'utf8')) : FIXED_ACCOUNTS;
}

function accountBySub(sub) {
  return accounts().find((account) => account.sub === sub);
}

function accountByLogin(email, password) {
  const account = accounts().find((a) => a.email.toLowerCase() === email.trim().toLowerCase());
  const given = Buffer.from(password);
  const expected = Buffer.from(PASSWORD);
  const passwordOk = given.length === expected.length && timingSafeEqual(given, expected);
  return account && passwordOk ? account : undefined;
}

// A fresh RSA key per run: the relying party must fetch it from the JWKS endpoint, which is
// exactly the path production takes.
const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const signingKey = {
  ...privateKey.export({ format: 'jwk' }),
  kid: `test-${randomBytes(6).toString('hex')}`,
  alg: 'RS256',
  use: 'sig',
};

const provider = new Provider(issuer, {
  clients,
  // PKCE for every client, confidential ones included (the default only demands it of public
  // clients), and only with S256: "plain" would hand the verifier to anyone reading the URL.
  pkce: { methods: ['S256'], required: () => true },
  claims: {
    openid: ['sub'],
    email: ['email', 'email_verified'],
    profile: ['name'],
    groups: ['groups'],
  },
  async findAccount(ctx, sub) {
    const account = accountBySub(sub);
    if (!account) return undefined;
    return {
      accountId: account.sub,
      async claims() {
        // Read again: the directory may have changed since the sign-in started.
        const now = accountBySub(sub) ?? account;
        return {
          sub: now.sub,
          email: now.email,
          email_verified: now.verified,
          name: now.name,
          groups: now.groups ?? [],
        };
      },
    };
  },
  jwks: { keys: [signingKey] },
  cookies: { keys: [randomBytes(32).toString('hex')] },
  // The built-in devInteractions accept any password; ours checks one, so a test can also
  // see a wrong password fail.
  features: { devInteractions: { enabled: false } },
  interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
});

const escapeHtml = (text) => String(text).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

function page(title, body) {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(title)}</title></head>`
    + `<body><main><h1>${escapeHtml(title)}</h1>${body}</main></body></html>`;
}

function loginPage(uid, error) {
  return page('Sign in to the test IdP', `
    ${error ? `<p role="alert">${escapeHtml(error)}</p>` : ''}
    <form method="post" action="/interaction/${escapeHtml(uid)}/login">
      <label>Email <input type="email" name="email" autocomplete="username" required></label>
      <label>Password <input type="password" name="password" autocomplete="current-password" required></label>
      <button type="submit">Sign in</button>
    </form>`);
}

function consentPage(uid, clientName, scopes) {
  return page('Allow access', `
    <p>${escapeHtml(clientName)} asks for: ${scopes.map(escapeHtml).join(', ')}</p>
    <form method="post" action="/interaction/${escapeHtml(uid)}/confirm">
      <button type="submit">Allow</button>
    </form>
    <form method="post" action="/interaction/${escapeHtml(uid)}/abort">
      <button type="submit">Deny</button>
    </form>`);
}

const MAX_FORM_BYTES = 16 * 1024;

async function readForm(req) {
  let size = 0;
  const chunks = [];
  for await (const chunk of req) {
    size += chunk.length;
    if (size > MAX_FORM_BYTES) throw new Error('form too large');
    chunks.push(chunk);
  }
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

function send(res, status, html) {
  res.writeHead(status, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
  res.end(html);
}

async function consentGrant(details, session, params) {
  const grant = details.grantId
    ? await provider.Grant.find(details.grantId)
    : new provider.Grant({ accountId: session.accountId, clientId: params.client_id });
  const { missingOIDCScope, missingOIDCClaims } = details.prompt.details;
  if (missingOIDCScope) grant.addOIDCScope(missingOIDCScope.join(' '));
  if (missingOIDCClaims) grant.addOIDCClaims(missingOIDCClaims);
  return grant.save();
}

// Everything under /interaction/<uid> is ours (the sign-in and consent pages); the rest of
// the URL space is the provider's.
const INTERACTION = /^\/interaction\/([\w-]+)(?:\/(login|confirm|abort))?$/;

async function interaction(req, res, action) {
  const details = await provider.interactionDetails(req, res);
  const { uid, prompt, params, session } = details;
  if (req.method === 'GET' && !action) {
    if (prompt.name === 'login') return send(res, 200, loginPage(uid));
    const scopes = String(params.scope ?? '').split(' ').filter(Boolean);
    return send(res, 200, consentPage(uid, params.client_id, scopes));
  }
  if (req.method !== 'POST' || !action) return send(res, 405, page('Method not allowed', ''));

  if (action === 'login') {
    if (prompt.name !== 'login') return send(res, 400, page('Not a sign-in step', ''));
    const form = await readForm(req);
    const account = accountByLogin(form.get('email') ?? '', form.get('password') ?? '');
    if (!account) return send(res, 200, loginPage(uid, 'Unknown email or wrong password.'));
    return provider.interactionFinished(req, res, { login: { accountId: account.sub } }, {
      mergeWithLastSubmission: false,
    });
  }
  if (action === 'confirm') {
    if (prompt.name !== 'consent') return send(res, 400, page('Not a consent step', ''));
    const grantId = await consentGrant(details, session, params);
    return provider.interactionFinished(req, res, { consent: { grantId } }, {
      mergeWithLastSubmission: true,
    });
  }
  return provider.interactionFinished(req, res, {
    error: 'access_denied',
    error_description: 'End-User denied the request',
  }, { mergeWithLastSubmission: false });
}

const providerCallback = provider.callback();

const server = createServer((req, res) => {
  const match = INTERACTION.exec(new URL(req.url, issuer).pathname);
  if (!match) return providerCallback(req, res);
  return interaction(req, res, match[2]).catch((err) => {
    // An expired or unknown interaction (e.g. a replayed form) is the user's problem, not a
    // crash: answer 400 and keep serving.
    console.error(`interaction failed: ${err.message}`);
    if (!res.headersSent) send(res, 400, page('Sign-in failed', `<p>${escapeHtml(err.message)}</p>`));
  });
});

provider.on('server_error', (ctx, err) => console.error(`server_error: ${err.stack}`));

for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => {
    server.close(() => process.exit(0));
    server.closeAllConnections();
  });
}

server.listen(port, '127.0.0.1', () => {
  console.log(`listening on ${issuer}`);
});
