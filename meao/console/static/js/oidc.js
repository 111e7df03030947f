// OpenID Connect sign-in for the console in jwt mode: the authorization-code flow with PKCE
// (RFC 6749 4.1, RFC 7636 with S256, OIDC Core 3.1). The console is a public client: it holds no secret,
// so the code is bound to this tab by a one-time code_verifier that never leaves sessionStorage until the
// token request, and the answer is bound to the request by `state` (and the ID token by `nonce`).
//
// beginLogin(oidc) navigates away to the IdP; completeLogin(oidc) runs when the IdP sends the browser
// back to redirectUri with ?code=..&state=.. (or ?error=..). `oidc` is config.json's "oidc" object.

const PENDING_KEY = 'meao.console.oidc.pending';
const VERIFIER_BYTES = 48; // 64 base64url characters: within RFC 7636's 43..128

function base64url(bytes) {
  let text = '';
  for (const b of bytes) text += String.fromCharCode(b);
  return btoa(text).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

function randomString(byteCount) {
  return base64url(crypto.getRandomValues(new Uint8Array(byteCount)));
}

async function s256(verifier) {
  const digest = await crypto.subtle.digest('SHA-256', new TextEncoder().encode(verifier));
  return base64url(new Uint8Array(digest));
}

function readPending() {
  const raw = sessionStorage.getItem(PENDING_KEY);
  if (!raw) return null;
  try {
    return JSON.parse(raw);
  } catch {
    return null;
  }
}

// The IdP's answer must not stay in the address bar: a reload would replay a spent code, and the URL
// would reach the history and bookmarks.
function clearQuery() {
  history.replaceState(history.state, '', location.pathname + location.hash);
}

function originOf(url) {
  try {
    return new URL(url).origin;
  } catch {
    return String(url);
  }
}

/** Start the sign-in: make a PKCE pair, `state` and `nonce`, keep them in this tab, go to the IdP. */
export async function beginLogin(oidc) {
  if (!window.crypto || !crypto.subtle) {
    throw new Error('This browser offers no Web Crypto here (it needs HTTPS or localhost), so the console '
      + 'cannot protect the sign-in with PKCE. Open the console over HTTPS.');
  }
  const verifier = randomString(VERIFIER_BYTES);
  const pending = {
    state: randomString(24),
    nonce: randomString(24),
    verifier,
    redirectUri: oidc.redirectUri,
  };
  const url = new URL(oidc.authorizationEndpoint);
  const params = {
    response_type: 'code',
    client_id: oidc.clientId,
    redirect_uri: oidc.redirectUri,
    scope: oidc.scope,
    state: pending.state,
    nonce: pending.nonce,
    code_challenge: await s256(verifier),
    code_challenge_method: 'S256',
  };
  for (const [name, value] of Object.entries(params)) url.searchParams.set(name, value);
  sessionStorage.setItem(PENDING_KEY, JSON.stringify(pending));
  location.assign(url.toString());
}

// The claims of a JWT, unverified: for the nonce of an ID token and the lifetime of an access token.
function jwtClaims(token) {
  const part = String(token).split('.')[1] || '';
  const bytes = Uint8Array.from(atob(part.replace(/-/g, '+').replace(/_/g, '/')), (c) => c.charCodeAt(0));
  return JSON.parse(new TextDecoder().decode(bytes));
}

function lifetime(answer) {
  if (Number.isFinite(answer.expires_in)) return answer.expires_in;
  try { // RFC 6749 makes expires_in optional: a JWT access token still says when it ends
    const { exp } = jwtClaims(answer.access_token);
    return Number.isFinite(exp) ? Math.max(0, exp - Math.floor(Date.now() / 1000)) : null;
  } catch {
    return null;
  }
}

/** Finish the sign-in on the IdP's redirect: null when the URL carries no answer of the IdP, else the
 * token ({accessToken, expiresIn, scope}); an Error whose message tells the operator what happened and
 * what to do when the IdP refused, the answer is not this tab's, or the code exchange fails. */
export async function completeLogin(oidc) {
  const query = new URLSearchParams(location.search);
  const code = query.get('code');
  const error = query.get('error');
  if (code === null && error === null) return null;
  clearQuery();
  const pending = readPending();
  sessionStorage.removeItem(PENDING_KEY); // the verifier is for one exchange only, whatever happens next

  if (error !== null) {
    const description = query.get('error_description');
    throw new Error(`The identity provider did not sign you in: ${error}`
      + (description ? ` (${description})` : '')
      + '. Sign in again; if it happens again, ask the administrator of the identity provider whether '
      + `your account may use the client "${oidc.clientId}" with the scopes "${oidc.scope}".`);
  }
  if (pending === null) {
    throw new Error('This page was opened with a sign-in answer, but this tab started no sign-in (or '
      + 'already used it). Nothing was exchanged. Click "Sign in" to start again.');
  }
  if (query.get('state') !== pending.state) {
    throw new Error('The sign-in answer does not carry the state this tab sent, so it is not the answer to '
      + 'your sign-in (it may be forged or come from an older attempt). It was refused and nothing was '
      + 'exchanged. Click "Sign in" to start again.');
  }
  const iss = query.get('iss'); // RFC 9207: when the IdP names itself, it must be the configured issuer
  if (iss !== null && oidc.issuer && iss !== oidc.issuer) {
    throw new Error(`The sign-in answer comes from the issuer "${iss}", not from "${oidc.issuer}" that this `
      + 'console uses. It was refused and nothing was exchanged. Click "Sign in" to start again.');
  }

  const body = new URLSearchParams({
    grant_type: 'authorization_code',
    code,
    redirect_uri: pending.redirectUri,
    client_id: oidc.clientId,
    code_verifier: pending.verifier,
  });
  let resp;
  try {
    resp = await fetch(oidc.tokenEndpoint, {
      method: 'POST',
      body,
      headers: { Accept: 'application/json' },
      credentials: 'omit',
      cache: 'no-store',
    });
  } catch (exc) {
    throw new Error(`The identity provider's token endpoint at ${originOf(oidc.tokenEndpoint)} could not be `
      + `reached (${exc.message}). Check that it is up and that it allows this console's origin `
      + `${location.origin} (CORS), then sign in again.`);
  }
  let answer = null;
  try {
    answer = await resp.json();
  } catch {
    answer = null;
  }
  if (!resp.ok) {
    const what = answer && typeof answer.error === 'string'
      ? `${answer.error}${answer.error_description ? ` (${answer.error_description})` : ''}`
      : `HTTP ${resp.status}`;
    throw new Error(`The identity provider refused to exchange the sign-in code for a token: ${what}. `
      + 'Sign in again; if it keeps failing, check that the IdP registers the client '
      + `"${oidc.clientId}" as a public client with PKCE and the redirect URI ${pending.redirectUri}.`);
  }
  if (!answer || typeof answer.access_token !== 'string' || !answer.access_token) {
    throw new Error('The identity provider answered the code exchange without an access token. Ask its '
      + 'administrator to check the client\'s settings, then sign in again.');
  }
  if (typeof answer.id_token === 'string') {
    let claims = null;
    try {
      claims = jwtClaims(answer.id_token);
    } catch {
      claims = null;
    }
    // The ID token came straight from the token endpoint (OIDC Core 3.1.3.7: TLS vouches for it); its
    // nonce must still be this sign-in's, else it was minted for another request.
    if (!claims || claims.nonce !== pending.nonce) {
      throw new Error('The identity provider returned an ID token that does not belong to this sign-in '
        + '(its nonce differs). It was refused. Click "Sign in" to start again.');
    }
  }
  return {
    accessToken: answer.access_token,
    expiresIn: lifetime(answer),
    scope: typeof answer.scope === 'string' ? answer.scope : oidc.scope,
  };
}
