// A strict third-party relying party: panva's openid-client (v6, on
// oauth4webapi) pointed at a running Latchkey by tests/it/interop.rs.
//
//   node rp.mjs start ISSUER CLIENT_ID CLIENT_SECRET REDIRECT_URI
//     -> {"url", "verifier", "state", "nonce"}: the authorization request
//   node rp.mjs finish ISSUER CLIENT_ID CLIENT_SECRET CALLBACK_URL VERIFIER STATE NONCE
//     -> code exchange (ID token claims validated by the library), userinfo
//        (sub checked), refresh, introspection, as JSON
//   node rp.mjs client ISSUER CLIENT_ID CLIENT_SECRET SCOPE
//     -> client_credentials grant
//
// Any deviation the library refuses ends the process with status 1 and the
// library's error on stderr.

import * as client from 'openid-client';

const [mode, issuer, clientId, clientSecret, ...rest] = process.argv.slice(2);

async function configure() {
  const url = new URL(issuer);
  const options = url.protocol === 'http:' ? { execute: [client.allowInsecureRequests] } : {};
  return client.discovery(url, clientId, clientSecret, client.ClientSecretBasic(clientSecret), options);
}

async function main() {
  const config = await configure();
  if (mode === 'start') {
    const [redirectUri] = rest;
    const verifier = client.randomPKCECodeVerifier();
    const state = client.randomState();
    const nonce = client.randomNonce();
    const url = client.buildAuthorizationUrl(config, {
      redirect_uri: redirectUri,
      scope: 'openid email profile offline_access',
      code_challenge: await client.calculatePKCECodeChallenge(verifier),
      code_challenge_method: 'S256',
      state,
      nonce,
    });
    return { url: url.href, verifier, state, nonce };
  }
  if (mode === 'finish') {
    const [callback, verifier, state, nonce] = rest;
    const tokens = await client.authorizationCodeGrant(config, new URL(callback), {
      pkceCodeVerifier: verifier,
      expectedState: state,
      expectedNonce: nonce,
      idTokenExpected: true,
    });
    const claims = tokens.claims();
    const userinfo = await client.fetchUserInfo(config, tokens.access_token, claims.sub);
    const refreshed = await client.refreshTokenGrant(config, tokens.refresh_token);
    const introspection = await client.tokenIntrospection(config, refreshed.access_token);
    return {
      claims,
      scope: tokens.scope,
      token_type: tokens.token_type,
      expires_in: tokens.expiresIn(),
      userinfo,
      refreshed_scope: refreshed.scope,
      refreshed_claims: refreshed.claims() ?? null,
      introspection,
    };
  }
  if (mode === 'client') {
    const [scope] = rest;
    const tokens = await client.clientCredentialsGrant(config, { scope });
    return { scope: tokens.scope, token_type: tokens.token_type, expires_in: tokens.expiresIn() };
  }
  throw new Error(`unknown mode ${mode}`);
}

main().then(
  (out) => process.stdout.write(JSON.stringify(out)),
  (err) => {
    process.stderr.write(`${err.name}: ${err.message}${err.code ? ` [${err.code}]` : ''}${err.cause ? `\ncause: ${JSON.stringify(err.cause)}` : ''}\n`);
    process.exit(1);
  },
);
