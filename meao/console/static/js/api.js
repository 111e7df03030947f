// Calls to meao's REST APIs with the session's token; every failure becomes a ProblemDetails-shaped object.

import {loadToken} from './session.js';

export class Unauthorized extends Error {
  constructor(problem) {
    super(problem.detail || problem.title);
    this.problem = problem;
  }
}

export class ApiError extends Error {
  constructor(problem) {
    super(problem.detail || problem.title);
    this.problem = problem;
  }
}

async function readBody(resp) {
  const type = resp.headers.get('Content-Type') || '';
  const text = await resp.text();
  if (!text) return null;
  if (type.includes('json')) {
    try {
      return JSON.parse(text);
    } catch {
      return text;
    }
  }
  return text;
}

function asProblem(status, body, what) {
  if (body && typeof body === 'object' && (body.title || body.detail)) {
    return {type: body.type, title: body.title || `HTTP ${status}`, status: body.status || status,
            detail: body.detail || '', instance: body.instance};
  }
  const detail = typeof body === 'string' && body.length < 500 ? body : '';
  return {title: `HTTP ${status}`, status, detail: detail || `${what} answered ${status}`};
}

/**
 * One API call. Resolves {status, body, headers} for 2xx and 304; throws Unauthorized on 401 (the caller
 * goes back to the login page) and ApiError with the ProblemDetails otherwise.
 */
export async function call(method, path, {body, contentType, etag, authMode} = {}) {
  const headers = {Accept: 'application/json, application/problem+json'};
  const token = loadToken();
  if (token) headers.Authorization = `Bearer ${token.accessToken}`;
  else if (authMode && authMode !== 'none') {
    throw new Unauthorized({title: 'Signed out', status: 401, detail: 'Your session has ended: sign in again.'});
  }
  if (etag) headers['If-None-Match'] = etag;
  // the token is the only credential: no cookies, and no browser password prompt on a 401
  const init = {method, headers, cache: 'no-store', credentials: 'omit'};
  if (body !== undefined) {
    headers['Content-Type'] = contentType || 'application/json';
    init.body = typeof body === 'string' ? body : JSON.stringify(body);
  }
  let resp;
  try {
    resp = await fetch(path, init);
  } catch (err) {
    throw new ApiError({title: 'meao is unreachable', status: 0,
                        detail: `${method} ${path} did not get an answer (${err.message}); check the network ` +
                                'and that meao serve is running.'});
  }
  if (resp.status === 304) return {status: 304, body: null, headers: resp.headers};
  const parsed = await readBody(resp);
  if (resp.status === 401) throw new Unauthorized(asProblem(401, parsed, `${method} ${path}`));
  if (!resp.ok) throw new ApiError(asProblem(resp.status, parsed, `${method} ${path}`));
  return {status: resp.status, body: parsed, headers: resp.headers};
}
