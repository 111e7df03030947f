// Trends: instantiate duration p50/p95 and queue depth over the last hour, drawn with uPlot. The charts are
// made once and fed new data, so a refresh does not rebuild them.

import uPlot from '../../vendor/uPlot.esm.js';
import {h} from '../dom.js';

const PALETTE = ['#5cc8ff', '#ffb454', '#7ee787', '#f778ba', '#d2a8ff', '#ff7b72', '#a5d6ff', '#e3b341'];
const AXIS = {stroke: '#9fb0c3', grid: {stroke: 'rgba(159,176,195,0.15)', width: 1},
              ticks: {stroke: 'rgba(159,176,195,0.25)', width: 1}};

const charts = {}; // key → {plot, root, seriesKey}

function ts(iso) {
  return Math.floor(Date.parse(iso) / 1000);
}

function chart(key, title, seriesKey, makeOpts, data, width) {
  let entry = charts[key];
  if (!entry || entry.seriesKey !== seriesKey) {
    if (entry) entry.plot.destroy();
    const root = h('div', {class: 'chart', 'data-testid': `chart-${key}`});
    const plot = new uPlot({...makeOpts(width), title}, data, root);
    entry = charts[key] = {plot, root, seriesKey};
  } else {
    entry.plot.setData(data);
    if (Math.abs(entry.plot.width - width) > 4) entry.plot.setSize({width, height: entry.plot.height});
  }
  return entry.root;
}

function durationOpts(width) {
  return {
    width, height: 260,
    scales: {x: {time: true}},
    series: [{},
      {label: 'p50', stroke: PALETTE[0], width: 2, points: {show: true}, value: (u, v) => v == null ? '–' : `${v.toFixed(2)} s`},
      {label: 'p95', stroke: PALETTE[1], width: 2, points: {show: true}, value: (u, v) => v == null ? '–' : `${v.toFixed(2)} s`},
      {label: 'count', stroke: PALETTE[2], width: 1, dash: [4, 4], scale: 'n', points: {show: false}}],
    axes: [{...AXIS}, {...AXIS, label: 'seconds'}, {...AXIS, side: 1, scale: 'n', label: 'instantiations', grid: {show: false}}],
  };
}

function depthOpts(queues) {
  return (width) => ({
    width, height: 260,
    scales: {x: {time: true}},
    series: [{}, ...queues.map((q, i) => ({label: q, stroke: PALETTE[i % PALETTE.length], width: 2,
                                            paths: uPlot.paths.stepped({align: 1}), points: {show: false}}))],
    axes: [{...AXIS}, {...AXIS, label: 'waiting jobs'}],
  });
}

function depthData(trend) {
  const xs = [...new Set(trend.queueDepth.flatMap((q) => q.points.map((p) => ts(p.t))))].sort((a, b) => a - b);
  const series = trend.queueDepth.map((q) => {
    const at = new Map(q.points.map((p) => [ts(p.t), p.depth]));
    return xs.map((x) => (at.has(x) ? at.get(x) : null));
  });
  return [xs, ...series];
}

export function renderTrends(snap, width) {
  const trend = snap.trends || {instantiateDurationS: [], queueDepth: [], windowS: 3600, bucketS: 300};
  const w = Math.max(320, Math.floor(width));
  const dur = trend.instantiateDurationS || [];
  const durData = [dur.map((b) => ts(b.t)), dur.map((b) => b.p50), dur.map((b) => b.p95), dur.map((b) => b.count)];
  const queues = (trend.queueDepth || []).map((q) => q.queue);
  const total = dur.reduce((n, b) => n + (b.count || 0), 0);
  const byState = (snap.counts && snap.counts.operationsByState) || {};
  return h('div', {class: 'trends'},
    h('section', {class: 'panel'},
      h('h2', {}, 'Instantiate duration', h('span', {class: 'muted small'},
        ` · last ${Math.round(trend.windowS / 60)} min in ${Math.round(trend.bucketS / 60)} min buckets · ${total} completed`)),
      chart('instantiate', '', 'fixed', durationOpts, durData, w)),
    h('section', {class: 'panel'},
      h('h2', {}, 'Queue depth', h('span', {class: 'muted small'}, ` · waiting jobs per queue`)),
      queues.length ? chart('depth', '', queues.join('|'), depthOpts(queues), depthData(trend), w)
                    : h('p', {class: 'empty'}, 'No queue sampled yet.')),
    h('section', {class: 'panel'},
      h('h2', {}, 'Operations by state'),
      h('div', {class: 'tiles'}, Object.entries(byState).map(([state, n]) =>
        h('div', {class: 'tile', 'data-testid': `count-${state}`}, h('div', {class: 'tile-num'}, String(n)),
          h('div', {class: 'tile-label'}, state))))));
}
