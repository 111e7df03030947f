// Jobs and operations: per-queue counts, the operations list and the detail of the one opened.

import {actionButton} from '../actions.js';
import {h} from '../dom.js';
import {clock, dateTime, seconds, shortId} from '../format.js';
import {badge, problemBox} from '../widgets.js';

function queues(snap) {
  return h('section', {class: 'panel'},
    h('h2', {}, 'Queues'),
    h('table', {class: 'table'},
      h('thead', {}, h('tr', {}, h('th', {}, 'Queue'), h('th', {}, 'PoPs'), h('th', {class: 'num'}, 'Waiting'),
        h('th', {class: 'num'}, 'Running'), h('th', {class: 'num'}, 'Failed'), h('th', {class: 'num'}, 'Oldest'),
        h('th', {}))),
      h('tbody', {}, snap.queues.map((q) => h('tr', {'data-testid': `queue-${q.name}`},
        h('td', {class: 'mono'}, q.name),
        h('td', {}, (q.pops || []).join(', ') || '–'),
        h('td', {class: `num ${q.waiting ? 'hot' : ''}`, 'data-testid': 'queue-waiting'}, String(q.waiting)),
        h('td', {class: 'num', 'data-testid': 'queue-running'}, String(q.running)),
        h('td', {class: `num ${q.failed ? 'bad-text' : ''}`}, String(q.failed)),
        h('td', {class: 'num'}, seconds(q.oldestWaitingAgeS)),
        h('td', {class: 'actions'}, q.waiting ? actionButton(snap.viewer, 'purge', q) : null))))));
}

function opActions(viewer, op) {
  if (op.operationState !== 'FAILED_TEMP') return null;
  return [actionButton(viewer, 'retry', op), actionButton(viewer, 'fail', op)];
}

function opRow(snap, op, selectedId, onSelect) {
  return h('tr', {'data-testid': `op-${op.id}`, 'data-state': op.operationState,
                  class: `clickable ${op.id === selectedId ? 'selected' : ''}`, tabindex: 0,
                  on: {click: () => onSelect(op.id), keydown: (ev) => { if (ev.key === 'Enter') onSelect(op.id); }}},
    h('td', {class: 'mono'}, shortId(op.id)),
    h('td', {class: 'app-name'}, op.appName || '–'),
    h('td', {}, op.lcmOperation),
    h('td', {}, badge(op.operationState, 'op-state')),
    h('td', {class: 'nowrap'}, op.mecHostId || '–'),
    h('td', {class: 'mono'}, op.currentStep || '–'),
    h('td', {class: 'num col-minor'}, String(op.attempt ?? '–')),
    h('td', {class: 'num col-minor'}, clock(op.startTime)),
    h('td', {class: 'actions'}, opActions(snap.viewer, op)));
}

function operations(snap, selectedId, onSelect) {
  const ops = snap.operations;
  return h('section', {class: 'panel'},
    h('h2', {}, 'Operations', h('span', {class: 'muted small'}, ` · ${ops.length} shown, active ones first`)),
    ops.length ? h('div', {class: 'scroll', 'data-scroll-key': 'ops'},
      h('table', {class: 'table'},
        h('thead', {}, h('tr', {}, h('th', {}, 'Id'), h('th', {}, 'App'), h('th', {}, 'Operation'),
          h('th', {}, 'State'), h('th', {}, 'PoP'), h('th', {}, 'Step'), h('th', {class: 'num col-minor'}, 'Attempt'),
          h('th', {class: 'num col-minor'}, 'Started'), h('th', {}))),
        h('tbody', {}, ops.map((op) => opRow(snap, op, selectedId, onSelect)))))
      : h('p', {class: 'empty'}, 'No operation yet.'));
}

function timeline(op, now) {
  const steps = op.steps || [];
  if (!steps.length) {
    return h('p', {class: 'muted'}, op.operationState === 'STARTING' ? 'Waiting for a worker to take the job.'
                                                                    : 'No step recorded.');
  }
  const t0 = Math.min(...steps.map((s) => Date.parse(s.startedAt)));
  const ends = steps.map((s) => (s.endedAt ? Date.parse(s.endedAt) : now));
  const span = Math.max(1, Math.max(...ends) - t0);
  return h('ol', {class: 'timeline', 'data-testid': 'op-steps'}, steps.map((s, i) => {
    const start = Date.parse(s.startedAt);
    const dur = s.durationS ?? (s.endedAt ? null : Math.max(0, (now - start) / 1000));
    const seg = h('div', {class: `timeline-seg tone-${s.state === 'DONE' ? 'ok' : s.state === 'RUNNING' ? 'busy' : 'bad'}`});
    seg.style.left = `${(((start - t0) / span) * 100).toFixed(2)}%`;
    seg.style.width = `${Math.max(0.8, ((ends[i] - start) / span) * 100).toFixed(2)}%`;
    return h('li', {class: 'timeline-step', 'data-testid': `step-${s.name}`, 'data-state': s.state},
      h('span', {class: 'timeline-name mono'}, s.name),
      h('div', {class: 'timeline-track'}, seg),
      h('span', {class: 'timeline-dur num'}, seconds(dur)),
      h('span', {class: 'timeline-meta muted small'}, `${s.state} · ${s.worker || '–'} · attempt ${s.attempt ?? '–'}`));
  }));
}

function detail(snap, op, stale, onClose) {
  const now = Date.parse(snap.generatedAt) || Date.now();
  const field = (k, v, cls = '') => [h('dt', {}, k), h('dd', {class: cls}, v ?? '–')];
  return h('aside', {class: 'panel detail', 'data-testid': 'op-detail', 'data-op-id': op.id},
    h('header', {class: 'detail-head'},
      h('h2', {}, `${op.lcmOperation} · `, h('span', {class: 'app-name'}, op.appName || op.appInstanceId)),
      badge(op.operationState, 'op-detail-state'),
      h('button', {type: 'button', class: 'btn btn-quiet', 'data-testid': 'op-detail-close', on: {click: onClose}}, 'Close')),
    stale ? h('p', {class: 'warn-text'}, 'This operation is no longer among the latest the console shows; ' +
                                       'what you see is its last known state.') : null,
    h('dl', {class: 'fields'},
      field('Operation', op.id, 'mono'),
      field('App instance', op.appInstanceId, 'mono'),
      field('Request id', h('span', {class: 'mono', 'data-testid': 'op-request-id'}, op.requestId),
            ''),
      field('PoP / queue', `${op.mecHostId || '–'} / ${op.queue || '–'}`),
      field('Worker', op.worker, 'mono'),
      field('Attempt', String(op.attempt ?? '–')),
      field('Started', dateTime(op.startTime)),
      field('State since', dateTime(op.stateEnteredTime))),
    h('p', {class: 'hint muted small'}, 'Grep the request id in the Nova, Neutron and Glance logs to follow ' +
                                        'this operation at the cloud.'),
    h('h3', {}, 'Steps'),
    timeline(op, now),
    op.error ? [h('h3', {}, 'Error'), problemBox(op.error, 'op-error')] : null,
    h('div', {class: 'detail-actions'}, opActions(snap.viewer, op)));
}

/** The view; ``selected`` is {id, last} where ``last`` is the op as last seen (kept if it drops out). */
export function renderJobs(snap, selected, onSelect) {
  let op = null;
  let stale = false;
  if (selected.id) {
    op = snap.operations.find((o) => o.id === selected.id) || null;
    if (op) selected.last = op;
    else if (selected.last && selected.last.id === selected.id) {
      op = selected.last;
      stale = true;
    }
  }
  return h('div', {class: `jobs ${op ? 'with-detail' : ''}`},
    h('div', {class: 'jobs-main'}, queues(snap), operations(snap, selected.id, onSelect)),
    op ? detail(snap, op, stale, () => onSelect(null)) : null);
}
