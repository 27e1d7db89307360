// The admin desk: tabs for accounts, the directory and dispatch catalogue, knowledge, calendar and deadline
// policies, channels and the audit trail. Every change goes through the REST API (which writes its audit event);
// the tabs reload what they show after each change. Shared lists (units, areas, categories) load once and are
// reloaded by the tabs that change them.
import { api } from './api.js';
import { h, clear, $, toast } from './dom.js';
import { LiveChannel } from './live.js';
import { fmtTime } from './time.js';
import { requireUser, topbar } from './topbar.js';
import { usersTab } from './admin_users.js';
import { directoryTab, orderAreas } from './admin_directory.js';
import { knowledgeTab, calendarTab } from './admin_content.js';
import { channelsTab } from './admin_channels.js';

const me = await requireUser();
topbar(me);

/** What every tab shares: the directory lists, reloaded after a change, and small helpers. */
const ctx = {
  me,
  units: [], areas: [], categories: [],
  async reload() {
    [ctx.units, ctx.areas, ctx.categories] = await Promise.all([api('/api/units'), api('/api/areas'), api('/api/categories')]);
  },
  unitName(id) { const u = ctx.units.find((x) => x.id === id); return u ? (u.short_name || u.name) : '—'; },
  areaName(id) { const a = ctx.areas.find((x) => x.id === id); return a ? a.name : '—'; },
  categoryPath(id) {
    const parts = [];
    let c = ctx.categories.find((x) => x.id === id);
    while (c) { parts.unshift(c.name); c = ctx.categories.find((x) => x.id === c.parent_id); }
    return parts.join(' / ') || '—';
  },
  /** Fill a <select> with options [value, text]; keeps the first option if ``keepFirst``. */
  options(select, items, keepFirst = false) {
    const first = keepFirst ? select.options[0] : null;
    clear(select);
    if (first) select.appendChild(first);
    for (const [value, text] of items) select.appendChild(h('option', { value }, text));
  },
  unitOptions() { return ctx.units.filter((u) => u.active).map((u) => [u.id, `${u.name}（${u.code}）`]); },
  areaOptions() {
    const depth = { city: 0, district: 1, street: 2, community: 3 };
    return orderAreas(ctx.areas).map((a) => [a.id, `${'　'.repeat(depth[a.level] || 0)}${a.name}`]);
  },
  categoryOptions() { return ctx.categories.map((c) => [c.id, `${c.code} ${ctx.categoryPath(c.id)}`]); },
  /** Run an API change: a toast on success, the server's words on failure; returns the result or null. */
  async change(promise, done) {
    try {
      const out = await promise;
      if (done) toast(done, 'ok');
      return out;
    } catch (err) {
      toast(`操作失败：${err.message}`, 'error');
      return null;
    }
  },
};

await ctx.reload();

// --- audit ------------------------------------------------------------------------------------------------------
const ACTIONS = { create: '新建', update: '修改', deactivate: '停用', delete: '删除', disable: '停用账号',
  enable: '启用账号', reset_password: '重置密码', import: '导入', replay: '重新处理', test: '测试' };
const ENTITIES = { user: '账号', unit: '单位', area: '地区', rule: '派单规则', article: '知识', directory: '目录',
  calendar_override: '日历调整', calendar_year: '年度日历', office_hours: '办公时间', deadline_policy: '时限',
  inbound: '渠道消息', channel: '渠道' };

function diff(before, after) {
  if (!before && !after) return '';
  if (!before) return '新建';
  if (!after) return '已删除';
  const keys = [...new Set([...Object.keys(before), ...Object.keys(after)])]
    .filter((k) => JSON.stringify(before[k]) !== JSON.stringify(after[k]) && k !== 'updated_at');
  return keys.map((k) => `${k}: ${JSON.stringify(before[k])} → ${JSON.stringify(after[k])}`).join('；');
}

function auditTab() {
  const select = $('#a-entity');
  ctx.options(select, Object.entries(ENTITIES), true);
  const body = $('#a-table tbody');
  async function load() {
    const q = select.value ? `?entity=${encodeURIComponent(select.value)}` : '';
    const events = await api(`/api/audit${q}`);
    clear(body);
    if (!events.length) body.appendChild(h('tr', {}, h('td', { colspan: 6, class: 'muted' }, '暂无记录')));
    for (const e of events) {
      body.appendChild(h('tr', { dataset: { id: e.id, entity: e.entity } },
        h('td', {}, fmtTime(e.at, true)), h('td', {}, e.actor_name), h('td', {}, ACTIONS[e.action] || e.action),
        h('td', {}, `${ENTITIES[e.entity] || e.entity} ${e.entity_id}`), h('td', {}, e.summary),
        h('td', { class: 'small diff' }, e.entity === 'directory' ? `${(e.after.changes || []).length} 行变化` : diff(e.before, e.after))));
    }
  }
  select.addEventListener('change', load);
  $('#a-refresh').addEventListener('click', load);
  return { load };
}

// --- tabs -------------------------------------------------------------------------------------------------------
const tabs = {
  users: usersTab(ctx), directory: directoryTab(ctx), knowledge: knowledgeTab(ctx), calendar: calendarTab(ctx),
  channels: channelsTab(ctx), audit: auditTab(),
};

async function show(name) {
  if (!tabs[name]) name = 'users';
  for (const button of document.querySelectorAll('.admin-tabs [role=tab]')) {
    button.setAttribute('aria-selected', String(button.dataset.tab === name));
  }
  for (const panel of document.querySelectorAll('.tab-panel')) panel.hidden = panel.id !== `tab-${name}`;
  document.body.dataset.tab = name;
  if (location.hash !== `#${name}`) history.replaceState(null, '', `#${name}`);
  try { await tabs[name].load(); } catch (err) { toast(`加载失败：${err.message}`, 'error'); }
  document.body.dataset.loaded = name;
}

for (const button of document.querySelectorAll('.admin-tabs [role=tab]')) {
  button.addEventListener('click', () => show(button.dataset.tab));
}
await show(location.hash.slice(1) || 'users');

const live = new LiveChannel({});
live.connect();
