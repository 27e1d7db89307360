// What the desk must not hard-code, from the server (GET /api/desk/config), loaded once per page and kept for its
// life: the labels of every code, each role's home page, the action table with its forms, the office hours and
// the policies the pages apply (which states each list shows, the callback attempts before an unreachable close).
import { api } from './api.js';
import { badge } from './dom.js';

let loading = null;
let current = null;

/** Load the config (once: later calls share the first request). Every page awaits it before it draws. */
export function loadConfig() {
  if (!loading) {
    loading = api('/api/desk/config').then((data) => { current = data; return data; });
    loading.catch(() => { loading = null; });  // a failed load may be retried
  }
  return loading;
}

/** The loaded config; drawing before ``loadConfig`` resolved is a bug, said loudly. */
export function config() {
  if (!current) throw new Error('the desk config is not loaded yet: await loadConfig() first');
  return current;
}

/** ``labels().status``, ``.kind``, ``.channel``, ``.satisfaction``, ``.event``, ``.role``, ``.case_rule``, … */
export function labels() { return config().labels; }

/** The label of ``code`` in one of the tables, or the code itself if the server has none. */
export function labelOf(table, code) {
  const t = config().labels[table];
  return (t && t[code]) || code;
}

export function policies() { return config().policies; }

export function homeOf(role) { return config().home_by_role[role] || '/'; }

/** The action table (GET /api/actions), by name. */
export function action(name) {
  return config().actions.find((a) => a.name === name) || null;
}

export function statusBadge(status) { return badge(labelOf('status', status), `st-${status}`); }
