// Sign-in: local mode exchanges client credentials at meao's token endpoint; jwt mode runs the OIDC
// authorization-code flow with PKCE (oidc.js, loaded only then).

import {h} from './dom.js';
import {saveToken} from './session.js';

async function tokenFromCredentials(config, clientId, secret) {
  const form = new URLSearchParams({grant_type: 'client_credentials', client_id: clientId, client_secret: secret});
  let resp;
  try {
    // credentials 'omit': the token endpoint's 401 carries a Basic challenge, and a request that may send
    // credentials would make the browser prompt for a password instead of handing the answer back
    resp = await fetch(config.tokenPath, {method: 'POST', body: form, cache: 'no-store', credentials: 'omit',
                                          headers: {'Content-Type': 'application/x-www-form-urlencoded',
                                                    Accept: 'application/json'}});
  } catch (err) {
    throw new Error(`meao did not answer (${err.message}): check that meao serve is running.`);
  }
  let body = null;
  try {
    body = await resp.json();
  } catch {
    body = null;
  }
  if (!resp.ok) {
    const why = body && (body.error_description || body.detail || body.error);
    if (resp.status === 401) throw new Error(`Sign-in refused: ${why || 'unknown client or wrong secret'}.`);
    if (resp.status === 429) throw new Error(`Too many attempts: ${why || 'wait a moment and try again'}.`);
    throw new Error(`Sign-in failed (${resp.status}): ${why || 'the token endpoint refused the request'}.`);
  }
  return {accessToken: body.access_token, expiresIn: body.expires_in, scope: body.scope};
}

/** The login page inside ``root``; calls ``onToken`` once a token is stored. */
export function renderLogin(root, config, message, onToken) {
  const error = h('p', {class: 'login-error', 'data-testid': 'login-error', role: 'alert'}, message || '');
  error.hidden = !message;
  const showError = (text) => { error.textContent = text; error.hidden = false; };
  let body;
  if (config.authMode === 'jwt') {
    const button = h('button', {type: 'button', class: 'btn btn-primary btn-wide', 'data-testid': 'oidc-login'},
                     'Sign in with your identity provider');
    button.addEventListener('click', async () => {
      if (!config.oidc) {
        showError('Single sign-on is not configured: set MEAO_CONSOLE_OIDC_CLIENT_ID on meao serve.');
        return;
      }
      button.disabled = true;
      try {
        const oidc = await import('./oidc.js');
        await oidc.beginLogin(config.oidc);
      } catch (err) {
        button.disabled = false;
        showError(err.message || String(err));
      }
    });
    body = [h('p', {class: 'muted'}, 'meao trusts tokens of ', h('span', {class: 'mono'},
                                     (config.oidc && config.oidc.issuer) || 'your identity provider'), '.'),
            button];
  } else {
    const id = h('input', {id: 'login-client-id', name: 'client_id', 'data-testid': 'login-client-id',
                           autocomplete: 'username', required: true, spellcheck: 'false'});
    const secret = h('input', {id: 'login-client-secret', name: 'client_secret', type: 'password',
                               'data-testid': 'login-client-secret', autocomplete: 'current-password',
                               required: true});
    const submit = h('button', {type: 'submit', class: 'btn btn-primary btn-wide', 'data-testid': 'login-submit'},
                     'Sign in');
    const form = h('form', {class: 'login-form', 'data-testid': 'login-form'},
      h('label', {for: 'login-client-id'}, 'Client id'), id,
      h('label', {for: 'login-client-secret'}, 'Client secret'), secret,
      submit);
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      submit.disabled = true;
      error.hidden = true;
      try {
        const token = await tokenFromCredentials(config, id.value.trim(), secret.value);
        saveToken(token);
        onToken();
      } catch (err) {
        showError(err.message || String(err));
        submit.disabled = false;
      }
    });
    body = [h('p', {class: 'muted'}, 'Sign in with an OAuth client of meao (',
              h('span', {class: 'mono'}, 'meao auth client create'), '). The token stays in this tab only.'),
            form];
  }
  root.replaceChildren(h('section', {class: 'login'},
    h('h1', {}, 'Sign in to the meao console'), error, body));
}

/** jwt mode, back from the identity provider: the token, or null when this is not a redirect back. */
export async function completeOidcLogin(config) {
  if (config.authMode !== 'jwt' || !config.oidc) return null;
  const params = new URLSearchParams(location.search);
  if (!params.has('code') && !params.has('error')) return null;
  const oidc = await import('./oidc.js');
  const result = await oidc.completeLogin(config.oidc);
  if (result) saveToken(result);
  return result;
}
