// A real, third-party authorization server for the gateway's interop tests:
// panva's oidc-provider (a certified OpenID provider), configured for the MCP
// authorization profile (RFC 7591 registration, RFC 7662 introspection,
// RFC 7009 revocation, RFC 8707 resource indicators, PKCE S256).
//
// Development and test use only: plain http on loopback, the built-in
// devInteractions login/consent pages (any login, any password), in-memory
// storage, keys made afresh at every start.
//
// Environment:
//   PORT                         listen port on 127.0.0.1; 0 or unset picks a free one
//   RESOURCE_URLS                comma-separated resource indicators (MCP server URLs) this AS
//                                issues tokens for; the first is the default resource
//   INTROSPECTION_CLIENT_ID      confidential client allowed to introspect (and revoke) any
//   INTROSPECTION_CLIENT_SECRET  token; defaults gateway / gateway-secret
//   ACCESS_TOKEN_TTL             seconds, default 300
//   ACCESS_TOKEN_FORMAT          opaque (default) or jwt: RFC 9068 JWT access tokens (typ at+jwt),
//                                signed with the provider's current key (RS256)
//
// Test-only endpoint (not part of oidc-provider): POST /__interop/rotate-keys generates a new
// signing key, publishes it at the jwks_uri next to the previous ones and signs with it from then
// on, without restarting the provider (oidc-provider reads its keystore on every signature and
// JWKS request; the keystore is replaced with oidc-provider's own initialisation function, so the
// new key is validated exactly as configured keys are). Answers {"kid": "<new kid>"}.
//
// oidc-provider serves the same discovery document at both
// /.well-known/openid-configuration and /.well-known/oauth-authorization-server (RFC 8414).
//
// Once listening, prints one JSON line on stdout: {"issuer":"http://127.0.0.1:<port>"}.
// Logs go to stderr. SIGTERM / SIGINT close the server and exit 0.

import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import { once } from 'node:events';

import Provider, { errors } from 'oidc-provider';
// oidc-provider's own keystore initialisation (no package "exports" map
// restricts deep imports): used to replace the keystore at run time.
import initializeKeystore from 'oidc-provider/lib/helpers/initialize_keystore.js';

const log = (...args) => console.error('[oidc-provider]', ...args);

const port = Number.parseInt(process.env.PORT || '0', 10);
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  log(`invalid PORT ${JSON.stringify(process.env.PORT)}`);
  process.exit(2);
}

const normalize = (u) => {
  const parsed = URL.parse(u);
  return parsed ? parsed.href : undefined;
};

const resourceURLs = (process.env.RESOURCE_URLS || '')
  .split(',')
  .map((s) => s.trim())
  .filter(Boolean);
for (const r of resourceURLs) {
  if (!normalize(r)) {
    log(`RESOURCE_URLS entry is not an absolute URL: ${r}`);
    process.exit(2);
  }
}
if (resourceURLs.length === 0) {
  log('RESOURCE_URLS is empty: every authorization request will fail with invalid_target');
}
const resources = new Map(resourceURLs.map((r) => [normalize(r), r]));

const introspectionClientID = process.env.INTROSPECTION_CLIENT_ID || 'gateway';
const introspectionClientSecret = process.env.INTROSPECTION_CLIENT_SECRET || 'gateway-secret';
const accessTokenTTL = Number.parseInt(process.env.ACCESS_TOKEN_TTL || '300', 10);
const accessTokenFormat = process.env.ACCESS_TOKEN_FORMAT || 'opaque';
if (accessTokenFormat !== 'opaque' && accessTokenFormat !== 'jwt') {
  log(`invalid ACCESS_TOKEN_FORMAT ${JSON.stringify(accessTokenFormat)}: want opaque or jwt`);
  process.exit(2);
}

const RESOURCE_SCOPE = 'op:add op:sub op:mult op:div op';

// Bind first so that the issuer (which must be known before the Provider is
// constructed) carries the real port even when PORT=0.
const server = createServer();
server.listen(port, '127.0.0.1');
await once(server, 'listening');
const issuer = `http://127.0.0.1:${server.address().port}`;

// RS256 is the default id_token_signed_response_alg of clients.
const newSigningKey = () => {
  const key = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ format: 'jwk' });
  key.use = 'sig';
  key.alg = 'RS256';
  key.kid = randomBytes(8).toString('hex');
  return key;
};
const signingKey = newSigningKey();
// The keys published at the jwks_uri, the current signing key first.
let signingKeys = [signingKey];

const configuration = {
  clients: [
    {
      // The gateway: a confidential client that only calls introspection.
      client_id: introspectionClientID,
      client_secret: introspectionClientSecret,
      token_endpoint_auth_method: 'client_secret_basic',
      grant_types: [],
      response_types: [],
      redirect_uris: [],
    },
    {
      // A pre-registered public MCP client for tests that skip DCR. Native
      // application type: http://127.0.0.1/callback matches on any port
      // (RFC 8252 section 7.3).
      client_id: 'mcp-test-client',
      application_type: 'native',
      token_endpoint_auth_method: 'none',
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      redirect_uris: ['http://127.0.0.1/callback', 'http://localhost/callback'],
    },
  ],
  scopes: ['openid', 'offline_access', 'op:add', 'op:sub', 'op:mult', 'op:div', 'op'],
  claims: { openid: ['sub'] },
  cookies: { keys: [randomBytes(32).toString('hex')] },
  jwks: { keys: [signingKey] },
  findAccount: async (_ctx, id) => ({
    accountId: id,
    claims: async () => ({ sub: id }),
  }),
  features: {
    devInteractions: { enabled: true },
    registration: { enabled: true }, // open RFC 7591 registration, no initial access token
    introspection: {
      enabled: true,
      // Any authenticated confidential client (the gateway) may introspect
      // any token, including access tokens issued to other clients for a
      // resource server; a public client only its own tokens.
      allowedPolicy: async (ctx, client, token) => {
        if (client.clientAuthMethod === 'none') {
          return token.clientId === client.clientId;
        }
        return true;
      },
    },
    revocation: {
      enabled: true,
      // A client revokes its own tokens; the introspection (gateway) client
      // may revoke any, which lets tests revoke a token "at the IdP".
      allowedPolicy: async (ctx, client, token) => {
        if (token.clientId === client.clientId) return true;
        if (client.clientId === introspectionClientID) return true;
        if (client.clientAuthMethod === 'none') return false;
        throw new errors.InvalidRequest('client is not authorized to revoke the presented token');
      },
    },
    resourceIndicators: {
      enabled: true,
      defaultResource: async (_ctx, _client, oneOf) => oneOf || resourceURLs[0],
      useGrantedResource: async () => true,
      getResourceServerInfo: async (_ctx, resourceIndicator) => {
        const known = resources.get(normalize(resourceIndicator));
        if (!known) {
          throw new errors.InvalidTarget(`unknown resource indicator ${resourceIndicator}`);
        }
        return {
          scope: RESOURCE_SCOPE,
          audience: known,
          accessTokenFormat,
          // JWT access tokens are signed with the current key (its kid
          // picks it out of the keystore, which also holds the old ones).
          ...(accessTokenFormat === 'jwt' ? { jwt: { sign: { alg: 'RS256', kid: signingKeys[0].kid } } } : {}),
          accessTokenTTL,
        };
      },
    },
  },
  // Refresh tokens whenever the client may use the refresh_token grant, with
  // or without offline_access (MCP clients often do not ask for it).
  issueRefreshToken: async (_ctx, client) => client.grantTypeAllowed('refresh_token'),
  pkce: { required: () => true },
  ttl: {
    AccessToken: accessTokenTTL,
    AuthorizationCode: 60,
    Grant: 14 * 24 * 60 * 60,
    IdToken: 3600,
    Interaction: 3600,
    RefreshToken: 14 * 24 * 60 * 60,
    Session: 14 * 24 * 60 * 60,
  },
};

const provider = new Provider(issuer, configuration);

provider.on('server_error', (ctx, err) => log('server_error', ctx?.path, err));
provider.on('grant.error', (ctx, err) => log('grant.error', err?.message, err?.error_description || ''));
provider.on('authorization.error', (ctx, err) => log('authorization.error', err?.message, err?.error_description || ''));
provider.on('introspection.error', (ctx, err) => log('introspection.error', err?.message, err?.error_description || ''));
provider.on('registration_create.error', (ctx, err) => log('registration_create.error', err?.message, err?.error_description || ''));

const providerCallback = provider.callback();
server.on('request', (req, res) => {
  if (req.method === 'POST' && req.url === '/__interop/rotate-keys') {
    const key = newSigningKey();
    signingKeys = [key, ...signingKeys];
    initializeKeystore.call(provider, { keys: structuredClone(signingKeys) });
    log(`keys rotated: signing with ${key.kid}, publishing ${signingKeys.length} keys`);
    res.setHeader('Content-Type', 'application/json');
    res.end(JSON.stringify({ kid: key.kid }));
    return;
  }
  providerCallback(req, res);
});

process.stdout.write(`${JSON.stringify({ issuer })}\n`);
log(`listening, issuer ${issuer}, resources ${JSON.stringify(resourceURLs)}, access tokens ${accessTokenFormat}`);

let closing = false;
const shutdown = (signal) => {
  if (closing) return;
  closing = true;
  log(`${signal}: shutting down`);
  server.close(() => process.exit(0));
  server.closeAllConnections?.();
  setTimeout(() => process.exit(0), 2000).unref();
};
process.on('SIGTERM', () => shutdown('SIGTERM'));
process.on('SIGINT', () => shutdown('SIGINT'));
