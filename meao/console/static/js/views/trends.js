// Trends: instantiate duration p50/p95 and queue depth over the last hour, drawn with uPlot. The charts are
// made once and fed new data, so a refresh does not rebuild them.

import uPlot from '../../vendor/uPlot.esm.js';
import {h} from '../dom.js';

const PALETTE = ['#5cc8ff', '#ffb454', '#7ee787', '#f778ba', '#d2a8ff', '#ff7b72', '#a5d6ff', '#e3b341'];
const AXIS = {stroke: '#9fb0c3', grid: {stroke: 'rgba(159,176,195,0.15)', width: 1},
              ticks: {stroke: 'rgba(159,176,195,0.25)', width: 1}};
// the time axis in 24 h UTC, like every time the console shows
const TIME_SERIES = {label: 'UTC', value: (u, v) => (v == null ? '–' : new Date(v * 1000).toISOString().slice(11, 16))};
const TIME_AXIS = {...AXIS, values: (u, splits) => splits.map((s) => new Date(s * 1000).toISOString().slice(11, 16))};

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

// times on the axis in UTC, like every time the console shows
const tzDate = (t) => uPlot.tzDate(new Date(t * 1000), 'Etc/UTC');
const fromZero = (u, min, max) => [0, max > 0 ? max * 1.15 : 1];

const secondsValue = (u, v) => (v == null ? '–' : `${v.toFixed(2)} s`);

// half a bucket of room at both ends: the first and last buckets' bars and steps show whole
const padded = (bucketS) => (u, min, max) => [min - bucketS / 2, max + bucketS / 2];

const durationOpts = (bucketS) => (width) => ({
    width, height: 260, tzDate,
    scales: {x: {time: true, range: padded(bucketS)}, y: {range: fromZero}, n: {range: fromZero}},
    series: [TIME_SERIES,
      {label: 'p50', stroke: PALETTE[0], width: 2, points: {show: true, size: 7}, value: secondsValue},
      {label: 'p95', stroke: PALETTE[1], width: 2, points: {show: true, size: 7}, value: secondsValue},
      {label: 'completed', stroke: PALETTE[2], fill: 'rgba(126, 231, 135, 0.18)', width: 1, scale: 'n',
       paths: uPlot.paths.bars({size: [0.5, 48]}), points: {show: false}, value: (u, v) => (v == null ? '–' : String(v))}],
    axes: [TIME_AXIS, {...AXIS, label: 'seconds'}, {...AXIS, side: 1, scale: 'n', label: 'completed', grid: {show: false}}],
});

function depthOpts(queues, bucketS) {
  return (width) => ({
    width, height: 260, tzDate,
    scales: {x: {time: true, range: padded(bucketS)}, y: {range: fromZero}},
    series: [TIME_SERIES, ...queues.map((q, i) => ({label: q, stroke: PALETTE[i % PALETTE.length], width: 2,
                                            paths: uPlot.paths.stepped({align: 1}), points: {show: false},
                                            value: (u, v) => (v == null ? '–' : String(v))}))],
    axes: [TIME_AXIS, {...AXIS, label: 'waiting jobs'}],
  });
}

function depthData(trend) {
  const xs = [...new Set(trend.queueDepth.flatMap((q) => q.points.map((p) => ts(p.t))))].sort((a, b) => a - b);
  const series = trend.queueDepth.map((q) => {
    const at = new Map(q.points.map((p) => [ts(p.t), p.depth]));
    return xs.map((x) => (at.has(x) ? at.get(x) : null));
  });
  // a step holds until the next point: the last bucket gets an end, or it would draw as a bare riser
  if (xs.length) {
    xs.push(xs[xs.length - 1] + trend.bucketS);
    for (const values of series) values.push(values[values.length - 1]);
  }
  return [xs, ...series];
}

export function renderTrends(snap, width) {
  const trend = snap.trends || {instantiateDurationS: [], queueDepth: [], windowS: 3600, bucketS: 300};
  const w = Math.max(320, Math.floor(width) - 8);
  const dur = trend.instantiateDurationS || [];
  const durData = [dur.map((b) => ts(b.t)), dur.map((b) => b.p50), dur.map((b) => b.p95),
                   dur.map((b) => b.count || null)];
  const queues = (trend.queueDepth || []).map((q) => q.queue);
  const total = dur.reduce((n, b) => n + (b.count || 0), 0);
  const byState = (snap.counts && snap.counts.operationsByState) || {};
  return h('div', {class: 'trends'},
    h('section', {class: 'panel'},
      h('h2', {}, 'Instantiate duration', h('span', {class: 'muted small'},
        ` · last ${Math.round(trend.windowS / 60)} min in ${Math.round(trend.bucketS / 60)} min buckets · ${total} completed`)),
      chart('instantiate', '', String(trend.bucketS), durationOpts(trend.bucketS), durData, w)),
    h('section', {class: 'panel'},
      h('h2', {}, 'Queue depth', h('span', {class: 'muted small'}, ` · waiting jobs per queue`)),
      queues.length ? chart('depth', '', `${trend.bucketS}|${queues.join('|')}`, depthOpts(queues, trend.bucketS),
                                          depthData(trend), w)
                    : h('p', {class: 'empty'}, 'No queue sampled yet.')),
    h('section', {class: 'panel'},
      h('h2', {}, 'Operations by state'),
      h('div', {class: 'tiles'}, Object.entries(byState).map(([state, n]) =>
        h('div', {class: 'tile', 'data-testid': `count-${state}`}, h('div', {class: 'tile-num'}, String(n)),
          h('div', {class: 'tile-label'}, state))))));
}
