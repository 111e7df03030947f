// PoPs: one card per MEC host with capacity, queue, workers and the MEP.

import {actionButton} from '../actions.js';
import {h} from '../dom.js';
import {mb, seconds} from '../format.js';
import {badge, bar} from '../widgets.js';

function capacity(pop) {
  if (pop.capacityError) {
    return h('div', {class: 'capacity-error', 'data-testid': 'capacity-error'}, 'Capacity unknown: ',
             pop.capacityError);
  }
  const cap = pop.capacity;
  if (!cap) return h('div', {class: 'muted'}, 'No capacity reading yet.');
  return h('div', {class: 'capacity'},
    cap.vcpus ? bar('vCPU', cap.vcpus.used, cap.vcpus.total) : null,
    cap.ramMb ? bar('RAM', cap.ramMb.used, cap.ramMb.total, mb) : null,
    cap.instances ? bar('Instances', cap.instances.used, cap.instances.total) : null);
}

function workerRow(viewer, worker) {
  const verb = worker.state === 'DRAINING' ? 'resume' : worker.state === 'ONLINE' ? 'drain' : null;
  return h('tr', {'data-testid': `worker-${worker.name}`},
    h('td', {class: 'mono wrap'}, worker.name),
    h('td', {}, badge(worker.state)),
    h('td', {class: 'num'}, seconds(worker.heartbeatAgeS)),
    h('td', {class: 'num'}, String(worker.running ?? 0)),
    h('td', {class: 'actions'}, verb ? actionButton(viewer, verb, worker) : null));
}

function mep(pop) {
  const m = pop.mep || {state: 'NONE'};
  return h('div', {class: 'mep'}, h('span', {class: 'kv-key'}, 'MEP'), badge(m.state, 'mep-state'),
    m.url ? h('span', {class: 'mono small'}, m.url) : null,
    m.detail ? h('span', {class: 'muted small'}, m.detail) : null);
}

function card(viewer, pop) {
  const waiting = pop.queueDepth || 0;
  return h('article', {class: 'card pop', 'data-testid': `pop-${pop.mecHostId}`},
    h('header', {class: 'card-head'},
      h('h3', {}, pop.mecHostId),
      h('span', {class: 'muted'}, [pop.cloud, pop.zone].filter(Boolean).join(' · '))),
    capacity(pop),
    h('div', {class: 'kv-row'},
      h('div', {class: 'kv'}, h('span', {class: 'kv-key'}, 'Queue'), h('span', {class: 'mono'}, pop.queue)),
      h('div', {class: `kv ${waiting ? 'kv-hot' : ''}`}, h('span', {class: 'kv-key'}, 'Waiting'),
        h('span', {class: 'kv-val', 'data-testid': 'queue-depth'}, String(waiting))),
      h('div', {class: 'kv'}, h('span', {class: 'kv-key'}, 'Oldest'),
        h('span', {class: 'kv-val'}, seconds(pop.oldestWaitingAgeS)))),
    pop.workers && pop.workers.length
      ? h('table', {class: 'table compact'},
        h('thead', {}, h('tr', {}, h('th', {}, 'Worker'), h('th', {}, 'State'), h('th', {class: 'num'}, 'Heartbeat'),
                                   h('th', {class: 'num'}, 'Jobs'), h('th', {}))),
        h('tbody', {}, pop.workers.map((w) => workerRow(viewer, w))))
      : h('div', {class: 'warn-text'}, 'No worker serves this PoP: its jobs wait.'),
    mep(pop));
}

export function renderPops(snap) {
  if (!snap.pops.length) {
    return h('p', {class: 'empty'}, 'No MEC host in the inventory (MEAO_MEC_HOSTS_FILE or `meao hosts`).');
  }
  return h('div', {class: 'cards'}, snap.pops.map((pop) => card(snap.viewer, pop)));
}
