// The operator actions: each goes through meao's own REST API (the same scopes as the CLI), behind a
// confirmation that says what will happen. A button shows only when the viewer holds ops:admin AND the
// scope of the API that does the work; the API checks again.

import {ApiError, Unauthorized, call} from './api.js';
import {h} from './dom.js';
import {confirmAction, problemBox, toast} from './widgets.js';

const enc = encodeURIComponent;

function plural(n, one, many) {
  return `${n} ${n === 1 ? one : many}`;
}

function opLabel(op) {
  return `${op.lcmOperation} of ${op.appName || op.appInstanceId} (operation ${op.id})`;
}

function pkgLabel(pkg) {
  return `${pkg.appName || pkg.appDId}${pkg.appSoftVersion ? ' ' + pkg.appSoftVersion : ''} (package ${pkg.id})`;
}

export const ACTIONS = {
  retry: {
    label: 'Retry', scope: 'app_lcm:write', danger: false,
    title: 'Retry the operation',
    text: (op) => `Retry ${opLabel(op)}: meao sends it to queue ${op.queue || 'of its MEC host'} again as ` +
      `attempt ${(op.attempt || 0) + 1}; it resumes after the last step that finished. Continue?`,
    run: (op) => call('POST', `/app_lcm/v1/app_lcm_op_occs/${enc(op.id)}/retry`),
    done: (op) => `Operation ${op.id} was sent again; its steps show up here as the worker runs them.`,
  },
  fail: {
    label: 'Fail', scope: 'app_lcm:write', danger: true,
    title: 'Fail the operation',
    text: (op) => `Fail ${opLabel(op)}: meao undoes what it made at the cloud for this operation and marks ` +
      'it FAILED; it can no longer be retried. Continue?',
    run: (op) => call('POST', `/app_lcm/v1/app_lcm_op_occs/${enc(op.id)}/fail`),
    done: (op) => `Operation ${op.id} is FAILED; what it had made at the cloud was removed.`,
  },
  purge: {
    label: 'Purge', scope: 'ops:admin', danger: true,
    title: 'Purge the queue',
    text: (queue) => `Purge queue ${queue.name}: ${plural(queue.waiting, 'waiting job is', 'waiting jobs are')} ` +
      'removed and their operations fail (FAILED_TEMP: retry or fail them afterwards; onboardings go back to ' +
      'CREATED). Running jobs are not touched. Continue?',
    run: (queue) => call('POST', `/ops/v1/queues/${enc(queue.name)}/purge`),
    done: (queue, resp) => `Queue ${queue.name} purged: ` +
      `${plural(resp.body && typeof resp.body.purged === 'number' ? resp.body.purged : 0, 'job', 'jobs')} removed.`,
  },
  drain: {
    label: 'Drain', scope: 'ops:admin', danger: true,
    title: 'Drain the worker',
    text: (worker) => `Drain worker ${worker.name}: it finishes its ${plural(worker.running || 0, 'running job',
      'running jobs')} and takes no new job from its queues until it is resumed. Continue?`,
    run: (worker) => call('POST', `/ops/v1/workers/${enc(worker.name)}/drain`),
    done: (worker) => `Worker ${worker.name} is draining.`,
  },
  resume: {
    label: 'Resume', scope: 'ops:admin', danger: false,
    title: 'Resume the worker',
    text: (worker) => `Resume worker ${worker.name}: it takes jobs from its queues again. Continue?`,
    run: (worker) => call('POST', `/ops/v1/workers/${enc(worker.name)}/resume`),
    done: (worker) => `Worker ${worker.name} takes jobs again.`,
  },
  enable: {
    label: 'Enable', scope: 'app_pkgm:write', danger: false,
    title: 'Enable the package',
    text: (pkg) => `Enable ${pkgLabel(pkg)}: new application instances can be instantiated from it. Continue?`,
    run: (pkg) => call('PATCH', `/app_pkgm/v1/app_packages/${enc(pkg.id)}`,
                       {body: {operationalState: 'ENABLED'}, contentType: 'application/merge-patch+json'}),
    done: (pkg) => `Package ${pkg.appName || pkg.id} is ENABLED.`,
  },
  disable: {
    label: 'Disable', scope: 'app_pkgm:write', danger: true,
    title: 'Disable the package',
    text: (pkg) => `Disable ${pkgLabel(pkg)}: no new instance can be instantiated from it; instances ` +
      'running now keep running. Continue?',
    run: (pkg) => call('PATCH', `/app_pkgm/v1/app_packages/${enc(pkg.id)}`,
                       {body: {operationalState: 'DISABLED'}, contentType: 'application/merge-patch+json'}),
    done: (pkg) => `Package ${pkg.appName || pkg.id} is DISABLED.`,
  },
};

/** Whether the viewer may see the button of ``verb``. */
export function allowed(viewer, verb) {
  const scopes = new Set((viewer && viewer.scopes) || []);
  return scopes.has('ops:admin') && scopes.has(ACTIONS[verb].scope);
}

let hooks = {onUnauthorized: () => {}, afterAction: () => {}};

export function setActionHooks(next) {
  hooks = next;
}

async function perform(verb, target) {
  const action = ACTIONS[verb];
  if (!(await confirmAction(action.title, action.text(target), action.label))) return;
  try {
    const resp = await action.run(target);
    toast('ok', `${action.label}: done`, action.done(target, resp));
  } catch (err) {
    if (err instanceof Unauthorized) {
      hooks.onUnauthorized(err.problem);
      return;
    }
    const problem = err instanceof ApiError ? err.problem : {title: 'Unexpected error', detail: String(err)};
    toast('error', `${action.label} refused`, problemBox(problem, 'toast-problem'));
  }
  hooks.afterAction();
}

/** The button of ``verb`` on ``target``, or null when the viewer may not do it. */
export function actionButton(viewer, verb, target) {
  if (!allowed(viewer, verb)) return null;
  const action = ACTIONS[verb];
  return h('button', {type: 'button', class: `btn btn-small ${action.danger ? 'btn-danger' : 'btn-primary'}`,
                      'data-testid': `action-${verb}`,
                      on: {click: (ev) => { ev.stopPropagation(); perform(verb, target); }}},
    action.label);
}
