// The access token, in sessionStorage under the contract's key: gone when the tab closes, never a cookie.

const KEY = 'meao.console.token';
const EARLY_MS = 10_000; // treat a token as expired a little early: no call should race its expiry

/** The stored token ({accessToken, expiresAt, scope}) if there is one that has not expired. */
export function loadToken() {
  let token;
  try {
    token = JSON.parse(sessionStorage.getItem(KEY) || 'null');
  } catch {
    token = null;
  }
  if (!token || typeof token.accessToken !== 'string') return null;
  if (typeof token.expiresAt === 'number' && token.expiresAt - EARLY_MS < Date.now()) {
    clearToken();
    return null;
  }
  return token;
}

/** Store a token answer ({accessToken, expiresIn, scope}) and return what was stored. */
export function saveToken({accessToken, expiresIn, scope}) {
  const token = {accessToken, expiresAt: Date.now() + (Number(expiresIn) || 3600) * 1000, scope: scope || ''};
  sessionStorage.setItem(KEY, JSON.stringify(token));
  return token;
}

export function clearToken() {
  sessionStorage.removeItem(KEY);
}
