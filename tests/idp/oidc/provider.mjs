// A real OpenID Provider for the integration tests: node-oidc-provider (a certified OP) with one
// static confidential client, the development interactions (a login form that takes any
// password, then a consent form) and accounts the test defines and changes while it runs.
//
//   node provider.mjs '<json options>'
//
// Options: clientId, clientSecret, redirectUri (the gateway's callback), accounts
// ({ "<account id>": { email?, name?, groups? } }) and conformIdTokenClaims (default false: the
// profile, email and groups claims go into the ID token; true: only into userinfo).
//
// It listens on 127.0.0.1 on an ephemeral port and prints one JSON line, {"port", "issuer"},
// once it answers. Besides the provider's own routes it serves, for the test only:
//   PUT /__test/accounts/<id>   body { email?, name?, groups? }: creates or replaces an account
//   GET /__test/html/.well-known/openid-configuration   an HTML page (an issuer that is none)
// Errors of the provider are logged to stderr. It ends when stdin closes (its test is over).

import crypto from 'node:crypto';
import http from 'node:http';

import Provider from 'oidc-provider';

const options = JSON.parse(process.argv[2] ?? '{}');
const accounts = new Map(Object.entries(options.accounts ?? {}));

// A signing key of its own, new every run (the provider's built-in development keys would do,
// but warn).
const signingKey = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 })
  .privateKey.export({ format: 'jwk' });
signingKey.use = 'sig';
signingKey.alg = 'RS256';
signingKey.kid = crypto.randomUUID();

async function findAccount(ctx, id) {
  if (!accounts.has(id)) return undefined;
  return {
    accountId: id,
    // Read at the time claims are issued: a change between two sign-ins is seen by the second.
    async claims() {
      const account = accounts.get(id) ?? {};
      const claims = { sub: id };
      if (account.email !== undefined) {
        claims.email = account.email;
        claims.email_verified = true;
      }
      if (account.name !== undefined) claims.name = account.name;
      if (account.groups !== undefined) claims.groups = account.groups;
      return claims;
    },
  };
}

function readBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

async function testRoute(req, res) {
  if (req.method === 'GET' && req.url === '/__test/html/.well-known/openid-configuration') {
    res.writeHead(200, { 'content-type': 'text/html' }).end('<!doctype html><p>not an issuer</p>');
    return;
  }
  const match = /^\/__test\/accounts\/([^/?]+)$/.exec(req.url);
  if (req.method !== 'PUT' || !match) {
    res.writeHead(404).end();
    return;
  }
  try {
    accounts.set(decodeURIComponent(match[1]), JSON.parse(await readBody(req)));
    res.writeHead(204).end();
  } catch (e) {
    res.writeHead(400, { 'content-type': 'text/plain' }).end(String(e));
  }
}

const server = http.createServer();
server.listen(0, '127.0.0.1', () => {
  const { port } = server.address();
  const issuer = `http://127.0.0.1:${port}`;
  const provider = new Provider(issuer, {
    clients: [{
      client_id: options.clientId,
      client_secret: options.clientSecret,
      redirect_uris: [options.redirectUri],
      grant_types: ['authorization_code'],
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_basic',
    }],
    jwks: { keys: [signingKey] },
    claims: {
      openid: ['sub'],
      email: ['email', 'email_verified'],
      profile: ['name'],
      groups: ['groups'],
    },
    conformIdTokenClaims: options.conformIdTokenClaims ?? false,
    features: { devInteractions: { enabled: true } },
    findAccount,
    pkce: { required: () => true },
    cookies: { keys: [crypto.randomBytes(32).toString('base64')] },
  });
  provider.on('server_error', (ctx, err) => console.error('idp server_error:', err));
  provider.on('grant.error', (ctx, err) => console.error('idp grant.error:', err.message, err.error_description ?? ''));
  const app = provider.callback();
  server.on('request', (req, res) => {
    if (req.url.startsWith('/__test/')) {
      testRoute(req, res);
    } else {
      app(req, res);
    }
  });
  console.log(JSON.stringify({ port, issuer }));
});

// The test holds our stdin; when it goes away (the test ended or was killed), so do we.
process.stdin.on('end', () => process.exit(0));
process.stdin.on('close', () => process.exit(0));
process.stdin.resume();
