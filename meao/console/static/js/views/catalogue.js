// Catalogue and instances: packages with their states and onboarding failures; instances with their
// OpenStack ids.

import {actionButton} from '../actions.js';
import {ApiError, Unauthorized, call} from '../api.js';
import {h} from '../dom.js';

import {badge, problemBox} from '../widgets.js';

// "Show all": the section lists the REST API's own pages (GET …?nextpage_opaque_marker=… as its
// Link: <…>; rel="next" says, same origin only) instead of the snapshot's latest 100, one page per
// "Load more", until the list has no next page. Kept across refreshes of the snapshot.
const LISTS = {
  packages: {path: '/app_pkgm/v1/app_packages', row: (p) => ({
    id: p.id, appDId: p.appDId, appName: p.appName, appProvider: p.appProvider,
    appSoftVersion: p.appSoftwareVersion, appDVersion: p.appDVersion, onboardingState: p.onboardingState,
    operationalState: p.operationalState, usageState: p.usageState,
    onboardingFailureDetails: p.onboardingFailureDetails || null})},
  instances: {path: '/app_lcm/v1/app_instances', row: (i) => {
    const vim = i.vimResources || {};
    return {id: i.id, appInstanceName: i.appInstanceName, appName: i.appName,
            instantiationState: i.instantiationState,
            operationalState: (i.instantiatedAppState && i.instantiatedAppState.operationalState) || null,
            mecHostId: (i.mecPlatform && i.mecPlatform.mecHostId) || null,
            serverId: (vim.computeResource && vim.computeResource.resourceId) || null,
            portIds: (vim.extCpResources || []).map((c) => c.resource && c.resource.resourceId).filter(Boolean)};
  }},
};
const full = {packages: null, instances: null}; // null: the snapshot's rows; else {items, next, busy, error}
let rerender = () => {};
let unauthorized = () => {};

/** The URL of the Link header's rel="next", when it is on this origin; null at the last page. */
export function nextLink(header) {
  // <URL>; param; … [, <URL>; …]: a URL's own commas (a filter's) stay inside its angle brackets
  for (const m of (header || '').matchAll(/<([^>]*)>\s*((?:;[^,<]*)*)/g)) {
    if (/;\s*rel="?([^";]*\s)?next(\s[^";]*)?"?\s*(;|$)/.test(m[2])) {
      const url = new URL(m[1], location.href);
      if (url.origin !== location.origin) {
        throw new ApiError({title: 'Next page elsewhere', status: 0,
                            detail: `the list's next page is at ${url.origin}, not this console's origin; ` +
                                    'the console follows links to its own meao only'});
      }
      return url.pathname + url.search;
    }
  }
  return null;
}

async function loadPage(kind) {
  const list = full[kind];
  if (!list || list.busy || list.next === null) return;
  list.busy = true;
  list.error = null;
  rerender();
  try {
    const resp = await call('GET', list.next);
    if (full[kind] !== list) return; // "Back to the latest" meanwhile
    for (const item of resp.body || []) list.items.push(LISTS[kind].row(item));
    list.next = nextLink(resp.headers.get('Link'));
  } catch (err) {
    if (err instanceof Unauthorized) {
      unauthorized(err.problem);
      return;
    }
    list.error = err instanceof ApiError ? err.problem : {title: 'Unexpected error', detail: String(err)};
  } finally {
    list.busy = false;
  }
  rerender();
}

function showAll(kind) {
  full[kind] = {items: [], next: LISTS[kind].path, busy: false, error: null};
  loadPage(kind);
}

function back(kind) {
  full[kind] = null;
  rerender();
}

/** What the page calls when a list's page arrived (render) or the token was refused. */
export function setCatalogueHooks(hooks) {
  rerender = hooks.rerender;
  unauthorized = hooks.onUnauthorized;
}

/** The rows of ``kind`` to show, the heading's count and the controls under the table. */
function listed(kind, snapRows, total) {
  const list = full[kind];
  if (!list) {
    const more = total !== undefined && total > snapRows.length;
    return {rows: snapRows, count: ` · ${snapRows.length} of ${total ?? '?'}`,
            controls: h('div', {class: 'list-controls'},
              h('button', {type: 'button', class: `btn btn-small ${more ? 'btn-primary' : ''}`,
                           'data-testid': `${kind}-show-all`, on: {click: () => showAll(kind)}},
                more ? `Show all ${total}` : 'Show all'))};
  }
  return {rows: list.items,
          count: ` · all: ${list.items.length} loaded${list.next === null ? '' : `, more to load (of ${total ?? '?'})`}`,
          controls: h('div', {class: 'list-controls', 'data-testid': `${kind}-paging`,
                              'data-complete': list.next === null ? 'true' : 'false'},
            list.next !== null
              ? h('button', {type: 'button', class: 'btn btn-small btn-primary', 'data-testid': `${kind}-load-more`,
                             disabled: list.busy, on: {click: () => loadPage(kind)}},
                list.busy ? 'Loading…' : 'Load more')
              : h('span', {class: 'muted small'}, 'Every one is listed.'),
            h('button', {type: 'button', class: 'btn btn-small', 'data-testid': `${kind}-latest`,
                         on: {click: () => back(kind)}}, 'Back to the latest'),
            list.error ? problemBox(list.error, `${kind}-paging-error`) : null)};
}

function packageRow(viewer, pkg) {
  let verb = null;
  if (pkg.onboardingState === 'ONBOARDED') verb = pkg.operationalState === 'ENABLED' ? 'disable' : 'enable';
  return h('tr', {'data-testid': `package-${pkg.id}`},
    h('td', {},
      h('div', {class: 'app-name'}, pkg.appName || '–'),
      h('div', {class: 'muted small'}, pkg.appProvider || ''),
      pkg.onboardingFailureDetails ? problemBox(pkg.onboardingFailureDetails, 'package-failure') : null),
    h('td', {}, pkg.appSoftVersion || '–', h('div', {class: 'muted small'}, `AppD ${pkg.appDVersion || '–'}`)),
    h('td', {class: 'mono small'}, pkg.appDId || '–'),
    h('td', {}, badge(pkg.onboardingState, 'package-onboarding')),
    h('td', {}, badge(pkg.operationalState, 'package-operational')),
    h('td', {}, badge(pkg.usageState)),
    h('td', {class: 'actions'}, verb ? actionButton(viewer, verb, pkg) : null));
}

function instanceRow(inst) {
  return h('tr', {'data-testid': `instance-${inst.id}`},
    h('td', {}, h('div', {class: 'app-name'}, inst.appInstanceName || '–'),
      h('div', {class: 'muted small mono'}, inst.id)),
    h('td', {class: 'app-name'}, inst.appName || '–'),
    h('td', {}, badge(inst.instantiationState)),
    h('td', {}, inst.operationalState ? badge(inst.operationalState) : '–'),
    h('td', {}, inst.mecHostId || '–'),
    h('td', {class: 'mono small'}, inst.serverId || '–'),
    h('td', {class: 'mono small'}, (inst.portIds || []).length
      ? h('ul', {class: 'plain'}, inst.portIds.map((p) => h('li', {}, p))) : '–'));
}

export function renderCatalogue(snap) {
  const c = snap.counts || {};
  const pkgs = listed('packages', snap.packages, c.packages);
  const insts = listed('instances', snap.instances, c.instances);
  return h('div', {class: 'catalogue'},
    h('section', {class: 'panel', 'data-testid': 'packages'},
      h('h2', {}, 'Packages', h('span', {class: 'muted small'}, pkgs.count)),
      pkgs.rows.length ? h('div', {class: 'scroll', 'data-scroll-key': 'packages'}, h('table', {class: 'table'},
        h('thead', {}, h('tr', {}, h('th', {}, 'App'), h('th', {}, 'Version'), h('th', {}, 'AppD id'),
          h('th', {}, 'Onboarding'), h('th', {}, 'Operational'), h('th', {}, 'Usage'), h('th', {}))),
        h('tbody', {}, pkgs.rows.map((p) => packageRow(snap.viewer, p)))))
        : h('p', {class: 'empty'}, 'No package onboarded.'),
      pkgs.controls),
    h('section', {class: 'panel', 'data-testid': 'instances'},
      h('h2', {}, 'Instances', h('span', {class: 'muted small'}, insts.count)),
      insts.rows.length ? h('div', {class: 'scroll', 'data-scroll-key': 'instances'}, h('table', {class: 'table'},
        h('thead', {}, h('tr', {}, h('th', {}, 'Instance'), h('th', {}, 'App'), h('th', {}, 'Instantiation'),
          h('th', {}, 'Operational'), h('th', {}, 'PoP'), h('th', {}, 'Server'), h('th', {}, 'Ports'))),
        h('tbody', {}, insts.rows.map(instanceRow))))
        : h('p', {class: 'empty'}, 'No application instance.'),
      insts.controls));
}

