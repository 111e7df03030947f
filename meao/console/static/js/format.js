// How numbers, times and states read on the page.

export function seconds(s) {
  if (s === null || s === undefined) return '–';
  if (s < 1) return `${(s * 1000).toFixed(0)} ms`;
  if (s < 60) return `${s.toFixed(1)} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${Math.round(s % 60)} s`;
  return `${Math.floor(s / 3600)} h ${Math.round((s % 3600) / 60)} min`;
}

export function clock(iso) {
  if (!iso) return '–';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return String(iso);
  return d.toISOString().slice(11, 19) + 'Z';
}

export function dateTime(iso) {
  if (!iso) return '–';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return String(iso);
  return d.toISOString().slice(0, 19).replace('T', ' ') + 'Z';
}

export function mb(v) {
  if (v === null || v === undefined) return '–';
  return v >= 1024 ? `${(v / 1024).toFixed(v % 1024 ? 1 : 0)} GB` : `${v} MB`;
}

export function shortId(id) {
  return id ? String(id).slice(0, 8) : '–';
}

// state → tone of its badge (ok, busy, warn, bad, idle)
const TONES = {
  COMPLETED: 'ok', ONLINE: 'ok', UP: 'ok', ENABLED: 'ok', ONBOARDED: 'ok', INSTANTIATED: 'ok', STARTED: 'ok',
  DONE: 'ok', EMBEDDED: 'ok', IN_USE: 'idle', NOT_IN_USE: 'idle',
  PROCESSING: 'busy', STARTING: 'busy', RUNNING: 'busy', ROLLING_BACK: 'busy', UPLOADING: 'busy',
  PROCESSING_PKG: 'busy',
  FAILED_TEMP: 'warn', DRAINING: 'warn', DISABLED: 'warn', CREATED: 'idle', NOT_INSTANTIATED: 'idle',
  STOPPED: 'idle', NONE: 'idle', ROLLED_BACK: 'warn',
  FAILED: 'bad', LOST: 'bad', DOWN: 'bad', ERROR: 'bad',
};

export function tone(state) {
  return TONES[state] || 'idle';
}
