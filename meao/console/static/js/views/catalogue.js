// Catalogue and instances: packages with their states and onboarding failures; instances with their
// OpenStack ids.

import {actionButton} from '../actions.js';
import {h} from '../dom.js';

import {badge, problemBox} from '../widgets.js';

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
  return h('div', {class: 'catalogue'},
    h('section', {class: 'panel'},
      h('h2', {}, 'Packages', h('span', {class: 'muted small'}, ` · ${snap.packages.length} of ${c.packages ?? '?'}`)),
      snap.packages.length ? h('div', {class: 'scroll', 'data-scroll-key': 'packages'}, h('table', {class: 'table'},
        h('thead', {}, h('tr', {}, h('th', {}, 'App'), h('th', {}, 'Version'), h('th', {}, 'AppD id'),
          h('th', {}, 'Onboarding'), h('th', {}, 'Operational'), h('th', {}, 'Usage'), h('th', {}))),
        h('tbody', {}, snap.packages.map((p) => packageRow(snap.viewer, p)))))
        : h('p', {class: 'empty'}, 'No package onboarded.')),
    h('section', {class: 'panel'},
      h('h2', {}, 'Instances', h('span', {class: 'muted small'}, ` · ${snap.instances.length} of ${c.instances ?? '?'}`)),
      snap.instances.length ? h('div', {class: 'scroll', 'data-scroll-key': 'instances'}, h('table', {class: 'table'},
        h('thead', {}, h('tr', {}, h('th', {}, 'Instance'), h('th', {}, 'App'), h('th', {}, 'Instantiation'),
          h('th', {}, 'Operational'), h('th', {}, 'PoP'), h('th', {}, 'Server'), h('th', {}, 'Ports'))),
        h('tbody', {}, snap.instances.map(instanceRow))))
        : h('p', {class: 'empty'}, 'No application instance.')));
}

