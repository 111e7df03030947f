// The console: sign in, then poll GET /ops/v1/console (with If-None-Match) and render the section shown.

import {setActionHooks} from './actions.js';
import {ApiError, Unauthorized, call} from './api.js';
import {fill, h} from './dom.js';
import {clock} from './format.js';
import {completeOidcLogin, renderLogin} from './login.js';
import {clearToken, loadToken} from './session.js';
import {renderCatalogue, setCatalogueHooks} from './views/catalogue.js';
import {renderJobs} from './views/jobs.js';
import {renderPops} from './views/pops.js';
import {renderTrends} from './views/trends.js';
import {problemBox} from './widgets.js';

const TABS = [
  {id: 'pops', label: 'PoPs', count: (s) => s.pops.length},
  {id: 'jobs', label: 'Jobs & operations',
   count: (s) => s.operations.filter((o) => ['STARTING', 'PROCESSING', 'FAILED_TEMP'].includes(o.operationState)).length},
  {id: 'catalogue', label: 'Catalogue & instances', count: (s) => s.packages.length},
  {id: 'trends', label: 'Trends', count: null},
];

const state = {
  config: null, snap: null, etag: null, error: null, lastOk: null,
  tab: 'pops', selected: {id: null, last: null},
  timer: null, inFlight: false, again: false, signedIn: false,
};

const $ = (id) => document.getElementById(id);

// ------------------------------------------------------------------ routing: #pops, #jobs/<opId>, ...
function readHash() {
  const [tab, opId] = location.hash.replace(/^#/, '').split('/');
  state.tab = TABS.some((t) => t.id === tab) ? tab : 'pops';
  // the open operation stays open while the operator looks at another section
  if (state.tab === 'jobs') state.selected.id = opId ? decodeURIComponent(opId) : null;
}

function go(tab, opId = null) {
  const hash = `#${tab}${opId ? '/' + encodeURIComponent(opId) : ''}`;
  if (location.hash !== hash) history.replaceState(null, '', hash);
  readHash();
  render();
}

// ------------------------------------------------------------------ header
function renderNav() {
  const nav = $('nav');
  nav.hidden = false;
  fill(nav, TABS.map((t) => {
    const n = state.snap && t.count ? t.count(state.snap) : null;
    return h('button', {type: 'button', class: `nav-tab ${state.tab === t.id ? 'active' : ''}`,
                        'data-testid': `nav-${t.id}`, 'aria-current': state.tab === t.id ? 'page' : null,
                        on: {click: () => go(t.id, t.id === 'jobs' ? state.selected.id : null)}},
      t.label, n !== null ? h('span', {class: 'nav-count'}, String(n)) : null);
  }));
}

function renderWho() {
  const viewer = state.snap && state.snap.viewer;
  $('who').hidden = false;
  $('logout').hidden = state.config.authMode === 'none';
  const el = $('viewer');
  if (!viewer) {
    el.textContent = '';
    return;
  }
  const scopes = viewer.scopes || [];
  el.title = `scopes: ${scopes.join(' ') || 'none'}${viewer.tenant ? ` · tenant ${viewer.tenant}` : ''}`;
  fill(el, h('span', {class: 'viewer-subject'}, viewer.subject || 'anonymous'),
    viewer.tenant ? h('span', {class: 'muted'}, ` · ${viewer.tenant}`) : null,
    h('span', {class: `role ${scopes.includes('ops:admin') ? 'role-admin' : 'role-read'}`},
      scopes.includes('ops:admin') ? 'admin' : 'read-only'));
}

function renderStatus() {
  const el = $('status');
  let text;
  let cls;
  if (!state.signedIn) {
    text = '';
    cls = '';
  } else if (document.hidden) {
    text = 'paused';
    cls = 'status-paused';
  } else if (state.error) {
    text = `stale · ${state.error.title}`;
    cls = 'status-stale';
  } else if (state.snap) {
    // the last poll that succeeded (200 or 304: a 304 keeps the snapshot, and its generatedAt, as they were)
    text = `live · ${clock(state.lastOk)}`;
    cls = 'status-live';
  } else {
    text = 'loading…';
    cls = '';
  }
  el.className = `status ${cls}`;
  el.textContent = text;
  // what the page shows is the snapshot computed then (unchanged since: the polls after it answered 304)
  el.title = state.snap ? `snapshot of ${clock(state.snap.generatedAt)}` : '';
  if (state.snap) el.dataset.generatedAt = state.snap.generatedAt;
  else delete el.dataset.generatedAt;
}

// ------------------------------------------------------------------ body
function contentWidth() {
  return $('app').clientWidth - 48;
}

function view() {
  const snap = state.snap;
  if (!snap) {
    return state.error ? h('div', {class: 'panel'}, h('h2', {}, 'The console cannot load'),
                           problemBox(state.error, 'load-error'))
                       : h('p', {class: 'empty'}, 'Loading…');
  }
  const banner = state.error
    ? h('div', {class: 'banner', 'data-testid': 'stale-banner'}, 'Not refreshed since ', clock(state.lastOk || snap.generatedAt), ': ',
        state.error.title, state.error.detail ? ` — ${state.error.detail}` : '')
    : null;
  let body;
  if (state.tab === 'jobs') {
    body = renderJobs(snap, state.selected, (id) => go('jobs', id));
  } else if (state.tab === 'catalogue') {
    body = renderCatalogue(snap);
  } else if (state.tab === 'trends') {
    body = renderTrends(snap, contentWidth());
  } else {
    body = renderPops(snap);
  }
  return [banner, h('div', {class: `view view-${state.tab}`, 'data-testid': `view-${state.tab}`}, body)];
}

let renderedHtml = null;
let pointerDownAt = 0; // when a pointer button went down (0: none is down)
let renderPending = false;

function render() {
  if (!state.signedIn) return;
  // a button pressed while the view is replaced would lose its click: wait for the release (at most a
  // moment: a release outside the window is never reported)
  if (pointerDownAt && Date.now() - pointerDownAt < 1500) {
    renderPending = true;
    return;
  }
  renderNav();
  renderWho();
  renderStatus();
  const app = $('app');
  const next = h('div', {class: 'view-root'}, view());
  // nothing the operator sees changed: keep the nodes (and any focus, selection or hover) as they are
  // (the trends' charts are live nodes moved into each new view: that view is always put in place)
  if (state.tab !== 'trends' && next.outerHTML === renderedHtml && app.firstElementChild && app.firstElementChild.classList.contains('view-root')) {
    return;
  }
  // a refresh keeps where the operator was: the page's and each list's scroll position
  const scrollY = window.scrollY;
  const scrolls = {};
  for (const el of app.querySelectorAll('[data-scroll-key]')) scrolls[el.dataset.scrollKey] = el.scrollTop;
  app.replaceChildren(next);
  renderedHtml = next.outerHTML;
  for (const el of app.querySelectorAll('[data-scroll-key]')) {
    if (el.dataset.scrollKey in scrolls) el.scrollTop = scrolls[el.dataset.scrollKey];
  }
  if (window.scrollY !== scrollY) window.scrollTo(0, scrollY);
}

// ------------------------------------------------------------------ polling
function schedule() {
  clearTimeout(state.timer);
  if (!state.signedIn || document.hidden) return;
  state.timer = setTimeout(poll, Math.max(0.5, Number(state.config.refreshS) || 2) * 1000);
}

async function poll() {
  clearTimeout(state.timer);
  if (!state.signedIn) return;
  if (document.hidden) {
    renderStatus();
    return;
  }
  if (state.inFlight) {
    state.again = true;
    return;
  }
  state.inFlight = true;
  try {
    const resp = await call('GET', '/ops/v1/console', {etag: state.snap ? state.etag : null,
                                                      authMode: state.config.authMode});
    state.error = null;
    state.lastOk = new Date().toISOString();
    if (resp.status === 200) {
      state.snap = resp.body;
      state.etag = resp.headers.get('ETag');
      render();
    }
  } catch (err) {
    if (err instanceof Unauthorized) {
      state.inFlight = false;
      signOut(`Signed out: ${err.problem.detail || err.problem.title}`);
      return;
    }
    const hadError = state.error;
    state.error = err instanceof ApiError ? err.problem : {title: 'Unexpected error', detail: String(err)};
    if (!hadError || !state.snap) render();
  } finally {
    state.inFlight = false;
  }
  renderStatus();
  if (state.again) {
    state.again = false;
    poll();
  } else {
    schedule();
  }
}

// ------------------------------------------------------------------ sign in / out
function showLogin(message) {
  state.signedIn = false;
  renderedHtml = null;
  clearTimeout(state.timer);
  $('nav').hidden = true;
  $('who').hidden = true;
  renderStatus();
  renderLogin($('app'), state.config, message, start);
}

function signOut(message) {
  clearToken();
  state.snap = null;
  state.etag = null;
  state.error = null;
  showLogin(message);
}

function start() {
  state.signedIn = true;
  renderedHtml = null;
  readHash();
  render();
  poll();
}

async function boot() {
  setActionHooks({onUnauthorized: (problem) => signOut(`Signed out: ${problem.detail || problem.title}`),
                  afterAction: () => poll()});
  setCatalogueHooks({rerender: () => render(),
                     onUnauthorized: (problem) => signOut(`Signed out: ${problem.detail || problem.title}`)});
  $('logout').addEventListener('click', () => signOut('You signed out.'));
  document.addEventListener('pointerdown', () => { pointerDownAt = Date.now(); }, true);
  const released = () => {
    pointerDownAt = 0;
    if (renderPending) {
      renderPending = false;
      setTimeout(render, 0); // after the click event this release belongs to
    }
  };
  document.addEventListener('pointerup', released, true);
  document.addEventListener('pointercancel', released, true);
  document.addEventListener('visibilitychange', () => (document.hidden ? renderStatus() : poll()));
  window.addEventListener('hashchange', () => { readHash(); render(); });
  let resized = null;
  window.addEventListener('resize', () => {
    clearTimeout(resized);
    resized = setTimeout(() => state.tab === 'trends' && render(), 200);
  });
  try {
    const resp = await fetch('config.json', {cache: 'no-store'});
    if (!resp.ok) {
      // a ProblemDetails says why (e.g. the identity provider's endpoints could not be discovered)
      const problem = await resp.json().catch(() => null);
      if (problem && problem.detail) throw Object.assign(new Error(problem.detail), {problem});
      throw new Error(`config.json answered ${resp.status}; is this meao serve?`);
    }
    state.config = await resp.json();
  } catch (err) {
    fill($('app'), h('div', {class: 'panel'}, h('h2', {}, 'The console cannot start'),
                     problemBox(err.problem || {title: 'No console configuration', detail: err.message})));
    return;
  }
  try {
    await completeOidcLogin(state.config);
  } catch (err) {
    showLogin(err.message || String(err));
    return;
  }
  const hadToken = sessionStorage.getItem('meao.console.token') !== null;
  if (state.config.authMode !== 'none' && !loadToken()) {
    showLogin(hadToken ? 'Your session has ended: sign in again.' : '');
    return;
  }
  start();
}

boot();
