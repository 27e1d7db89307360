// Supervisor board: overdue (red) and near-due (yellow) tickets, recoloured in the browser every 2 s from
// reply_due / yellow_at so a deadline passing on an open board turns red without any reload; approvals waiting;
// hot spots, supervision orders, accountability cases and unit scorecards (board_panels.js); charts by category,
// area and channel with drill-down; who is online.
import { api } from './api.js';
import { action, labelOf, policies, statusBadge } from './config.js';
import { h, clear, $, toast, badge } from './dom.js';
import { LiveChannel } from './live.js';
import { debounce } from './schedule.js';
import { WorkClock, fmtSpan, fmtTime } from './time.js';
import { requireUser, topbar } from './topbar.js';
import { openActionForm, oversightPanel, renderTicket, unitName } from './ticket.js';
import { hotspotsPanel, supervisionPanel, accountabilityPanel, scorecardsPanel } from './board_panels.js';

const me = await requireUser();
topbar(me);
const [units, categories] = await Promise.all([api('/api/units'), api('/api/categories')]);
const clock = new WorkClock();
const state = { board: null, stats: null, lights: new Map() };

// --- deadline lights ----------------------------------------------------------------------------------------------
function row(t, note) {
  // ``note``: approval lists say what waits for a decision instead of a countdown.
  const info = t.deadline;
  const light = note ? 'none' : clock.light(info);
  const left = info ? clock.left(info, 'reply') : null;
  const when = note || (info && info.reply_due
    ? (light === 'red' ? `超期 ${fmtSpan(left, { working: !info.clock })}` : `剩余 ${fmtSpan(left, { working: !info.clock })}`) : '');
  return h('li', { dataset: { id: t.id, light: light || 'none' }, class: `row light-${light || 'none'}` },
    h('button', { type: 'button', class: 'item', onclick: () => openDetail(t.id) },
      h('span', { class: 'number' }, t.number), ' ', t.urgent ? badge('紧急', 'urgent') : null,
      h('span', { class: 'title' }, t.title || t.text.slice(0, 24)),
      h('span', { class: 'unit muted' }, t.unit ? (t.unit.short_name || t.unit.name) : '—'),
      h('span', { class: 'when', dataset: { role: 'when' } }, when),
      h('span', { class: 'muted small' }, ` 时限 ${fmtTime(t.reply_due)}`)));
}

function renderLights() {
  if (!state.board) return;
  const red = [];
  const yellow = [];
  for (const t of state.board.watch) {
    const light = clock.light(t.deadline);
    if (light === 'red') red.push(t);
    else if (light === 'yellow') yellow.push(t);
  }
  const key = `${red.map((t) => t.id)}|${yellow.map((t) => t.id)}`;
  if (key !== state.lightsKey) {
    state.lightsKey = key;
    fill('#red-list', red, '无超期工单');
    fill('#yellow-list', yellow, '无临期工单');
  } else {
    for (const li of document.querySelectorAll('#red-list li[data-id], #yellow-list li[data-id]')) {
      const t = state.board.watch.find((x) => x.id === Number(li.dataset.id));
      const el = li.querySelector('[data-role=when]');
      if (t && el) el.textContent = row(t).querySelector('[data-role=when]').textContent;
    }
  }
  // The list holds only the nearest 500 deadlines; the KPI is the server's count of every overdue ticket, plus
  // those of the list that passed their deadline since the server counted.
  const counted = Date.parse(state.board.server_time);
  const since = red.filter((t) => Date.parse(t.deadline.reply_due) >= counted).length;
  const overdue = state.board.counts.overdue + since;
  $('#kpi-red').textContent = String(overdue);
  $('#red-count').textContent = String(overdue);
  const hidden = overdue - red.length;
  const note = $('#red-more');
  if (hidden > 0) {
    const text = `另有 ${hidden} 件超期工单未列出（列表只含最近的 ${state.board.watch.length} 个时限）`;
    if (note) note.textContent = text;
    else $('#red-list').appendChild(h('li', { id: 'red-more', class: 'empty muted small' }, text));
  } else if (note) note.remove();
  $('#yellow-count').textContent = $('#kpi-yellow').textContent = String(yellow.length);
}

function fill(selector, items, emptyText, note) {
  const list = clear($(selector));
  for (const t of items) list.appendChild(row(t, note && note(t)));
  if (!items.length) list.appendChild(h('li', { class: 'empty muted' }, emptyText));
}

async function loadBoard() {
  const data = await api('/api/desk/board');
  clock.sync(data.server_time, null);
  state.board = data;
  state.lightsKey = null;
  renderLights();
  $('#kpi-open').textContent = String(data.counts.open);
  fill('#ext-list', data.extension_pending, '无延期申请', () => '延期待审批');
  // A send-back stops the unit's clock: what runs is the centre's own wait for its decision.
  fill('#ret-list', data.returned, '无退单', (t) => (t.deadline && t.deadline.centre_waiting_s !== null
    ? `退单待处理 · 中心已等待 ${fmtSpan(t.deadline.centre_waiting_s)}` : '退单待处理'));
  fill('#uns-list', data.unsatisfied, '无不满意回访', (t) => (t.solved ? '已解决但不满意' : '未解决且不满意'));
  $('#ext-count').textContent = String(data.extension_pending.length);
  $('#ret-count').textContent = String(data.returned.length);
  $('#uns-count').textContent = String(data.unsatisfied.length);
  $('#kpi-approvals').textContent = String(data.extension_pending.length + data.returned.length + data.unsatisfied.length);
}
const refreshBoard = debounce(() => loadBoard().catch((e) => toast(e.message, 'error')), 300);

// --- ticket detail ------------------------------------------------------------------------------------------------
const dialog = $('#detail');
const detailBody = $('#detail-body');
$('#detail-close').addEventListener('click', () => dialog.close());
/** What the supervisor may do from the 督办/问责 panel: the workflow's 督办, 催办, 问责 where this ticket allows them. */
const OVERSIGHT_ACTIONS = ['supervise', 'remind', 'accountability'];

/** Every 督办 order and 问责 case of the ticket, answered and decided ones too. */
async function oversightOf(id) {
  const [orders, cases] = await Promise.all([
    api(`/api/supervision?state=all&ticket_id=${id}`), api(`/api/accountability?state=all&ticket_id=${id}`)]);
  return { orders, cases };
}

function show(t, oversight) {
  ctx.ticket = t; // the action forms read ``version`` from this object when they submit
  ctx.oversight = oversight;
  // the 问责 form decides one of the cases still open (or opens a new one)
  ctx.cases = oversight.cases.filter((c) => c.state === 'opened' || c.state === 'explained');
  renderTicket(detailBody, t, ctx);
}
const ctx = {
  me, units, categories, showAnalysis: false,
  openTicket: (id) => openDetail(id),
  beforeActions: (t) => [oversightPanel(ctx.oversight.orders, ctx.oversight.cases, {
    units, showUnit: true, now: clock.now(),
    actions: OVERSIGHT_ACTIONS.filter((name) => (t.allowed_actions || []).includes(name))
      .map((name) => ({ label: action(name).label, onclick: () => openActionForm(detailBody, name) })),
  })],
  onDone: async (updated) => {
    show(updated, await oversightOf(updated.id).catch(() => ctx.oversight));
    refreshBoard();
  },
  onConflict: () => ctx.current && openDetail(ctx.current),
};
async function openDetail(id) {
  try {
    const [t, oversight] = await Promise.all([api(`/api/tickets/${id}`), oversightOf(id)]);
    ctx.current = id;
    ctx.defaults = { dispatch: { unit_id: null }, accountability: { decision: 'open' } };
    show(t, oversight);
    if (!dialog.open) dialog.showModal();
  } catch (err) { toast(err.message, 'error'); }
}

/** A select without a ``selected`` option shows its first one: that is its default, not a change. */
function selectChanged(el) {
  const options = [...el.options];
  if (el.multiple) return options.some((o) => o.selected !== o.defaultSelected);
  const preset = options.findLastIndex((o) => o.defaultSelected);
  return el.selectedIndex !== (preset < 0 ? 0 : preset);
}

/** The supervisor is filling in an action form: focus in it, a changed field, or a form with fields opened. */
function engaged(container) {
  const actions = container.querySelector(':scope > .actions');
  if (!actions) return false;
  const active = document.activeElement;
  if (active && actions.contains(active) && ['INPUT', 'TEXTAREA', 'SELECT'].includes(active.tagName)) return true;
  for (const el of actions.querySelectorAll('input, textarea, select')) {
    if (el.type === 'checkbox' || el.type === 'radio') { if (el.checked !== el.defaultChecked) return true; }
    else if (el.tagName === 'SELECT') { if (selectChanged(el)) return true; }
    else if (el.value !== el.defaultValue) return true;
  }
  return [...actions.querySelectorAll('details[open]')].some((d) => d.querySelector('.field'));
}

/**
 * A live event for the open ticket. Nobody typing: re-render it. Otherwise keep the action forms as they are
 * (typed text, focus, open form) and replace everything around them — status, history, units, replies — and
 * let the forms submit with the new version; if the allowed actions changed, say so and offer a full refresh.
 */
async function refreshDetail(id) {
  if (!dialog.open || ctx.current !== id) return;
  const [fresh, oversight] = await Promise.all([api(`/api/tickets/${id}`), oversightOf(id)]);
  if (!dialog.open || ctx.current !== id) return;
  const keep = detailBody.querySelector(':scope > .actions');
  if (!keep || !ctx.ticket || !engaged(detailBody)) { show(fresh, oversight); return; }
  ctx.oversight = oversight;
  const before = (ctx.ticket.allowed_actions || []).join(',');
  const changed = before !== (fresh.allowed_actions || []).join(',');
  const scratch = document.createElement('article');
  renderTicket(scratch, fresh, ctx);
  const nodes = [...scratch.children];
  const at = nodes.findIndex((n) => n.classList.contains('actions'));
  for (const child of [...detailBody.children]) if (child !== keep) child.remove();
  keep.before(...(at < 0 ? nodes : nodes.slice(0, at)));
  if (at >= 0) keep.after(...nodes.slice(at + 1));
  Object.assign(ctx.ticket, fresh);
  keep.prepend(h('div', { class: 'stale-notice', role: 'status' },
    changed ? '此工单的状态已变化，下列操作可能已不适用。' : '此工单刚刚有更新，办理记录已刷新，您填写的内容已保留。',
    h('button', { type: 'button', class: 'small', onclick: () => show(fresh, oversight) }, changed ? '刷新操作' : '重新载入')));
  for (const old of [...keep.querySelectorAll(':scope > .stale-notice')].slice(1)) old.remove();
}
const refreshDetailSoon = debounce((id) => refreshDetail(id).catch((e) => toast(e.message, 'error')), 250);

// --- charts -------------------------------------------------------------------------------------------------------
const charts = {};
function chart(dim) {
  if (!charts[dim]) {
    charts[dim] = window.echarts.init(document.getElementById(`chart-${dim}`), null, { renderer: 'canvas' });
    charts[dim].on('click', (p) => drill(dim, p.seriesIndex, p.dataIndex));
    window.addEventListener('resize', () => charts[dim].resize());
  }
  return charts[dim];
}

async function loadStats() {
  const days = Number($('#days').value);
  const data = await api(`/api/desk/stats?days=${days}`);
  state.stats = data;
  for (const dim of ['category', 'area', 'channel']) {
    const series = data[dim].slice(0, 10);
    chart(dim).setOption({
      tooltip: { trigger: 'axis', axisPointer: { type: 'shadow' } },
      legend: { type: 'scroll', top: 0 },
      grid: { left: 36, right: 12, top: 36, bottom: 28 },
      xAxis: { type: 'category', data: data.days.map((d) => d.slice(5)) },
      yAxis: { type: 'value', minInterval: 1 },
      series: series.map((s) => ({ name: s.name, type: 'bar', stack: 'total', data: s.counts, emphasis: { focus: 'series' } })),
      animation: false,
    }, true);
  }
}

async function drill(dim, seriesIndex, dataIndex) {
  const s = state.stats[dim][seriesIndex];
  const day = state.stats.days[dataIndex];
  const params = new URLSearchParams({ received_from: day, received_to: day, page_size: '100' });
  if (dim === 'category') { if (s.id === null) { toast('未分类工单无法按分类筛选', 'warn'); return; } params.set('category_id', s.id); }
  if (dim === 'area') { if (s.id === null) { toast('未识别地区的工单无法按地区筛选', 'warn'); return; } params.set('area_id', s.id); }
  if (dim === 'channel') params.set('channel', s.key);
  const page = await api(`/api/tickets?${params}`);
  const section = $('#drill');
  section.hidden = false;
  $('#drill-title').textContent = `${day} · ${s.name} · 共 ${page.total} 件`;
  const body = clear($('#drill-body'));
  for (const t of page.items) {
    body.appendChild(h('tr', { dataset: { id: t.id } },
      h('td', {}, h('button', { type: 'button', class: 'link', onclick: () => openDetail(t.id) }, t.number)),
      h('td', {}, t.title), h('td', {}, statusBadge(t.status)), h('td', {}, t.unit ? t.unit.name : '—'),
      h('td', {}, fmtTime(t.received_at))));
  }
  section.scrollIntoView({ behavior: 'smooth' });
}
$('#days').addEventListener('change', () => loadStats().catch((e) => toast(e.message, 'error')));
const refreshStats = debounce(() => loadStats().catch(() => {}), 5000);

// --- presence -----------------------------------------------------------------------------------------------------
function renderPresence(p) {
  $('#kpi-online').textContent = String(p.users);
  const box = clear($('#presence'));
  if (!p.groups.length) { box.appendChild(h('p', { class: 'muted' }, '无人在线')); return; }
  box.appendChild(h('ul', { class: 'presence-list' }, p.groups.map((g) => h('li', {},
    h('strong', {}, `${labelOf('role', g.role)}${g.unit_id ? ' · ' + unitName(units, g.unit_id) : ''}`),
    h('span', { class: 'muted' }, `（${g.users.length}人）`), ' ',
    g.users.map((u) => h('span', { class: 'person' }, u.name)).flatMap((x, i) => (i ? ['、', x] : [x]))))));
}

// --- board panels -------------------------------------------------------------------------------------------------
const panels = {
  hotspots: hotspotsPanel({ openDetail, onCount: (n) => { $('#kpi-hotspots').textContent = String(n); } }),
  supervision: supervisionPanel({ openDetail, clock }),
  accountability: accountabilityPanel({ openDetail, me }),
  scorecards: scorecardsPanel({ openDetail }),
};
const SUPERVISION_EVENTS = new Set(['supervise', 'respond_supervision', 'supervision_overdue']);
// Events that change a scorecard figure (the server's scorecard event types).
const SCORE_EVENTS = new Set(policies().scorecard_event_types);

// --- live ---------------------------------------------------------------------------------------------------------
const live = new LiveChannel({
  onEvent: (msg) => {
    refreshBoard();
    if (msg.type === 'receive') { refreshStats(); panels.hotspots.schedule(); }
    else if (panels.hotspots.has(msg.ticket_id)) panels.hotspots.schedule(); // a member's state changed
    if (SUPERVISION_EVENTS.has(msg.type)) panels.supervision.schedule();
    if (msg.type === 'accountability') panels.accountability.schedule();
    if (SCORE_EVENTS.has(msg.type)) panels.scorecards.schedule();
    if (dialog.open && ctx.current === msg.ticket_id) refreshDetailSoon(msg.ticket_id);
  },
  onPresence: renderPresence,
  onReconnect: () => { refreshBoard(); for (const p of Object.values(panels)) p.schedule(); },
  onResync: () => { refreshBoard(); for (const p of Object.values(panels)) p.schedule(); },
});
await Promise.all([
  loadBoard(), loadStats().catch((e) => toast(`图表加载失败：${e.message}`, 'error')),
  ...Object.values(panels).map((p) => p.load()),
]);
api('/api/desk/presence').then(renderPresence).catch(() => {});
live.connect();
setInterval(() => { renderLights(); panels.supervision.tick(); }, 2000);
setInterval(() => refreshBoard(), 60 * 1000);
setInterval(() => panels.hotspots.load(), 60 * 1000); // the window slides: old reports drop out
window.__desk = { live, state, clock, charts, drill, panels, ctx, openDetail };
