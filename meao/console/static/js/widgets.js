// Small pieces shared by the views: state badges, capacity bars, ProblemDetails, toasts, the confirmation.

import {h} from './dom.js';
import {tone} from './format.js';

export function badge(state, testid) {
  return h('span', {class: `badge tone-${tone(state)}`, 'data-testid': testid}, state || '–');
}

/** A capacity bar: used of total, its width set through the CSSOM (the CSP forbids style attributes). */
export function bar(label, used, total, render = String) {
  const share = total > 0 ? Math.min(1, used / total) : 0;
  const fillEl = h('div', {class: `bar-fill ${share >= 0.9 ? 'tone-bad' : share >= 0.7 ? 'tone-warn' : 'tone-ok'}`});
  fillEl.style.width = `${(share * 100).toFixed(1)}%`;
  return h('div', {class: 'bar-row'},
    h('div', {class: 'bar-label'}, h('span', {}, label),
      h('span', {class: 'bar-nums'}, `${render(used)} / ${render(total)}`,
        h('span', {class: 'bar-free'}, ` · ${render(Math.max(0, total - used))} free`))),
    h('div', {class: 'bar', role: 'meter', 'aria-valuemin': 0, 'aria-valuemax': total, 'aria-valuenow': used,
              'aria-label': label}, fillEl));
}

/** A ProblemDetails (RFC 7807) as text: title, status, detail, type, instance. */
export function problemBox(problem, testid = 'problem') {
  if (!problem) return null;
  return h('div', {class: 'problem', 'data-testid': testid, role: 'alert'},
    h('div', {class: 'problem-title'}, problem.title || 'Error',
      problem.status ? h('span', {class: 'problem-status'}, ` ${problem.status}`) : null),
    problem.detail ? h('div', {class: 'problem-detail'}, problem.detail) : null,
    h('dl', {class: 'problem-meta'},
      problem.type ? [h('dt', {}, 'type'), h('dd', {}, problem.type)] : null,
      problem.instance ? [h('dt', {}, 'instance'), h('dd', {}, problem.instance)] : null));
}

let toastSeq = 0;

/** A message in the corner for a few seconds (errors stay until closed). */
export function toast(kind, title, body) {
  const box = document.getElementById('toasts');
  const id = ++toastSeq;
  const close = h('button', {type: 'button', class: 'toast-close', 'aria-label': 'Close'}, '×');
  const el = h('div', {class: `toast toast-${kind}`, 'data-testid': 'toast', 'data-kind': kind, 'data-seq': id},
    h('div', {class: 'toast-head'}, h('strong', {}, title), close),
    typeof body === 'string' ? h('div', {class: 'toast-body'}, body) : body);
  close.addEventListener('click', () => el.remove());
  box.appendChild(el);
  if (kind !== 'error') setTimeout(() => el.remove(), 8000);
  while (box.children.length > 4) box.firstElementChild.remove();
  return el;
}

/** Ask before acting: resolves true only when the operator pressed Continue. */
export function confirmAction(title, text, okLabel = 'Continue') {
  const dialog = document.getElementById('confirm');
  document.getElementById('confirm-title').textContent = title;
  document.getElementById('confirm-text').textContent = text;
  dialog.querySelector('[data-testid="confirm-ok"]').textContent = okLabel;
  dialog.returnValue = '';
  return new Promise((resolve) => {
    dialog.addEventListener('close', () => resolve(dialog.returnValue === 'ok'), {once: true});
    dialog.showModal();
    dialog.querySelector('[data-testid="confirm-cancel"]').focus();
  });
}
