// Unit desk (承办单位): my unit's tickets by deadline with working-time countdowns, and the unit's actions:
// sign, reply, send back, extension, ask the citizen once for what is missing, answer supervision/accountability.
import { api } from './api.js';
import { labelOf, policies, statusBadge } from './config.js';
import { h, clear, $, toast, badge, refreshSelected } from './dom.js';
import { LiveChannel } from './live.js';
import { coalesce } from './schedule.js';
import { WorkClock, fmtSpan, fmtTime } from './time.js';
import { requireUser, topbar } from './topbar.js';
import { renderTicket, oversightPanel, revealTicket, reworkBadge } from './ticket.js';

const me = await requireUser();
topbar(me);
const units = await api('/api/units');
const myUnit = units.find((u) => u.id === me.unit_id);
const isUnit = me.role === 'unit_handler';
$('#unit-name').textContent = myUnit ? myUnit.name : '全部单位';
const clock = new WorkClock();
const state = {
  items: [], view: 'open', selected: null, oversight: { orders: [], cases: [] }, oversightKey: '', deadline: null,
  loads: 0, openSeq: 0,
};
const ticketBox = $('#ticket');
// The states each tab lists (the server's unit views): an event about a ticket now in one of them, or about a
// ticket on the list, is worth a reload; anything else is not.
const VIEW_STATES = Object.fromEntries(
  Object.entries(policies().unit_view_states).map(([view, states]) => [view, new Set(states)]));
// A stopped clock says 已答复, or how the ticket left without a reply (its status: 已并案, 已转警).
const LEFT_WITHOUT_REPLY = new Set(['merged', 'transferred']);
const ctx = {
  me, units, categories: [], showAnalysis: false,
  labels: isUnit ? { accountability: '问责说明' } : {},
  onDone: (updated) => { openTicket(updated.id, { known: updated }); refresh(); },
  onConflict: () => state.selected && openTicket(state.selected.id),
  backToList: () => backToList(),
  beforeActions: () => [detailCountdown(), oversightPanel(state.oversight.orders, state.oversight.cases,
    { units, showUnit: !isUnit, now: clock.now() })],
};

function countdownText(info) {
  if (!info) return ['', ''];
  if (info.stopped) {
    // Answered: the clock has stopped; say so, and whether it was in time.
    const done = labelOf('status', LEFT_WITHOUT_REPLY.has(info.status) ? info.status : 'replied');
    if (info.on_time === true) return [`${done} · 按时`, 'done'];
    if (info.on_time === false) return [`${done} · 超期 ${fmtSpan(info.late_s || 0, { working: !info.clock })}`, 'done-late'];
    return [done, 'done'];
  }
  if (!info.reply_due) return ['', ''];
  if (info.paused) return [info.status === 'returned' ? '已暂停（退单待中心决定）' : '已暂停（待市民补充）', 'paused'];
  const light = clock.light(info);
  const left = clock.left(info, 'reply');
  const mode = info.clock ? '' : '工作时间';
  if (light === 'red') return [`已超期 ${fmtSpan(left, { working: !info.clock })}`, 'red'];
  return [`剩余${mode} ${fmtSpan(left, { working: !info.clock })}`, light];
}

function signText(info, t) {
  if (!info || info.stopped || info.sign_left_s === null || t.signed_at) return null;
  const left = clock.left(info, 'sign');
  return left < 0 ? `签收已超时 ${fmtSpan(left, { working: !info.clock })}` : `请在 ${fmtSpan(left, { working: !info.clock })} 内签收`;
}

function supervisionBadge(info) {
  if (!info || !info.supervision_open) return null;
  const late = info.supervision_due && clock.now() > Date.parse(info.supervision_due);
  return h('span', { class: `badge ${late ? 'danger' : 'warn'}`, dataset: { role: 'sup', due: info.supervision_due || '' },
    title: info.supervision_due ? `督办限办 ${fmtTime(info.supervision_due, true)}` : '督办' }, late ? '督办超期' : '督办');
}

function card(t) {
  const info = t.deadline;
  const [text, light] = countdownText(info);
  return h('li', { dataset: { id: t.id }, class: `card light-${light || 'none'} ${state.selected && state.selected.id === t.id ? 'selected' : ''}` },
    h('button', { type: 'button', class: 'item', onclick: () => openTicket(t.id, { reveal: true }) },
      h('div', { class: 'line1' }, h('span', { class: 'number' }, t.number), statusBadge(t.status),
        t.urgent ? badge('紧急', 'urgent') : null, reworkBadge(t),
        t.unit && me.unit_id && t.unit.id !== me.unit_id ? badge('协办', 'co') : null,
        supervisionBadge(info),
        info && info.accountability_open ? badge('问责', 'danger') : null,
        t.extension_pending ? badge('延期审批中', 'warn') : null),
      h('div', { class: 'line2 title' }, t.title || t.text.slice(0, 30)),
      h('div', { class: 'countdown', dataset: { role: 'countdown' } }, text),
      h('div', { class: 'line3 muted small' }, `答复时限 ${fmtTime(t.reply_due)}`, ' · ', labelOf('kind', t.kind),
        signText(info, t) ? h('span', { class: 'sign-due', dataset: { role: 'sign' } }, ` · ${signText(info, t)}`) : null)));
}

function render() {
  const list = clear($('#unit-list'));
  for (const t of state.items) list.appendChild(card(t));
  if (!state.items.length) list.appendChild(h('li', { class: 'empty muted' }, state.view === 'open' ? '暂无待办工单' : '暂无待回访工单'));
  $('#unit-count').textContent = String(state.items.length);
}

/** The open ticket's own countdown (or "已答复 · 按时"), from /api/desk/deadlines. */
function detailCountdown() {
  const info = state.deadline;
  if (!info) return null;
  const [text, light] = countdownText(info);
  if (!text) return null;
  return h('p', { class: `detail-countdown light-${light || 'none'}` },
    h('span', { class: 'k' }, '答复时限：'), h('span', { class: 'countdown', dataset: { role: 'detail-countdown' } }, text));
}

function setLight(el, light) {
  el.className = el.className.replace(/light-\S+/, `light-${light || 'none'}`);
}

function tick() {
  for (const li of document.querySelectorAll('#unit-list li[data-id]')) {
    const t = state.items.find((x) => x.id === Number(li.dataset.id));
    if (!t) continue;
    const [text, light] = countdownText(t.deadline);
    const el = li.querySelector('[data-role=countdown]');
    if (el && el.textContent !== text) el.textContent = text;
    setLight(li, light);
    const sign = li.querySelector('[data-role=sign]');
    const st = signText(t.deadline, t);
    if (sign && st) sign.textContent = ` · ${st}`;
    const sup = li.querySelector('[data-role=sup]');
    if (sup && sup.dataset.due && clock.now() > Date.parse(sup.dataset.due) && !sup.classList.contains('danger')) {
      sup.className = 'badge danger';
      sup.textContent = '督办超期';
    }
  }
  const detail = ticketBox.querySelector('[data-role=detail-countdown]');
  if (detail && state.deadline) {
    const [text, light] = countdownText(state.deadline);
    if (detail.textContent !== text) detail.textContent = text;
    setLight(detail.closest('.detail-countdown'), light);
  }
  // A 督办 order's due time passing on an open page turns it red.
  for (const due of ticketBox.querySelectorAll('.oversight .order:not(.overdue) [data-due]')) {
    if (clock.now() > Date.parse(due.dataset.due)) {
      const li = due.closest('.order');
      li.classList.add('overdue');
      due.textContent = `限办 ${fmtTime(due.dataset.due, true)}（已超期）`;
      const b = li.querySelector('.badge');
      if (b) b.className = 'badge danger';
    }
  }
}

async function load() {
  state.loads += 1;
  const before = new Set(state.items.map((t) => t.id));
  const data = await api(`/api/desk/unit-queue?view=${state.view}`);
  clock.sync(data.server_time, data.periods);
  state.items = data.items;
  render();
  if (state.selected && before.has(state.selected.id) && !state.items.some((t) => t.id === state.selected.id)) {
    // It left this list (replied, returned…): keep it open but refresh it, or drop it if no longer ours.
    reloadSelected();
  }
}
const refresh = coalesce(() => load().catch((e) => toast(e.message, 'error')));
const reloadSelected = coalesce(() => (state.selected ? openTicket(state.selected.id) : null));

function showTicket(ticket, { reveal = false } = {}) {
  state.selected = ticket;
  const mine = (x) => !isUnit || x.unit_id === me.unit_id;
  const orders = state.oversight.orders.filter((o) => o.state === 'open' && mine(o));
  const opened = state.oversight.cases.filter((c) => c.state === 'opened' && mine(c));
  // The 督办回复 form only while an order of this unit is open, the 问责说明 form only while a case waits for
  // the unit's explanation (the server would answer 409 otherwise); the case is chosen when there are several.
  ctx.orders = orders;
  ctx.cases = isUnit ? opened : state.oversight.cases;
  ctx.hide = [];
  if (isUnit && !orders.length) ctx.hide.push('respond_supervision');
  if (isUnit && !opened.length) ctx.hide.push('accountability');
  renderTicket(ticketBox, ticket, ctx);
  for (const li of document.querySelectorAll('#unit-list li')) li.classList.toggle('selected', Number(li.dataset.id) === ticket.id);
  if (reveal) revealTicket(ticketBox);
}

/** 返回列表 (phones): back up to the open ticket's card in the list, or the list's top. */
function backToList() {
  const id = state.selected && state.selected.id;
  const item = id && document.querySelector(`#unit-list li[data-id='${id}'] button.item`);
  (item ? item.closest('li') : $('#unit-list')).scrollIntoView({ block: 'center' });
  if (item) item.focus({ preventScroll: true });
}

/** The open orders and cases of this ticket (a unit's own only: the server scopes them). */
async function oversightOf(id) {
  const [orders, cases] = await Promise.all([
    api(`/api/supervision?state=open&ticket_id=${id}`).catch(() => []),
    api(`/api/accountability?state=open&ticket_id=${id}`).catch(() => []),
  ]);
  return { orders, cases };
}

async function deadlineOf(id) {
  const data = await api(`/api/desk/deadlines?ids=${id}`).catch(() => null);
  const info = data && data.tickets[id];
  if (!info) return null;
  // This answer has its own server_time: count from there, not from the list's.
  return { ...info, base_ms: Date.parse(data.server_time) };
}

function typingIn(box) {
  const active = document.activeElement;
  return Boolean(active && box.contains(active) && ['INPUT', 'TEXTAREA', 'SELECT'].includes(active.tagName));
}

/**
 * Show a ticket with its 督办/问责 and its countdown. ``known``: the ticket our own action just returned, shown at
 * once. The page is redrawn only when something changed (version, orders, cases), and never under the user's
 * fingers: while they type in the open ticket a notice offers the refresh instead (``force`` is that refresh).
 * ``reveal``: the user opened it from the list (on a phone, scroll it into view).
 */
async function openTicket(id, { known = null, force = false, reveal = false } = {}) {
  const seq = ++state.openSeq;
  if (known) showTicket(known);
  try {
    const [ticket, oversight, deadline] = await Promise.all([
      known ? Promise.resolve(known) : api(`/api/tickets/${id}`), oversightOf(id), deadlineOf(id)]);
    if (seq !== state.openSeq) return;  // another ticket was opened meanwhile
    const key = JSON.stringify(oversight);
    const shown = state.selected && state.selected.id === ticket.id && Number(ticketBox.dataset.ticketId) === ticket.id;
    state.deadline = deadline;
    if (!force && shown && state.selected.version === ticket.version && key === state.oversightKey) {
      tick();
      if (reveal) revealTicket(ticketBox);
      return;
    }
    if (!force && shown && typingIn(ticketBox)) {
      refreshSelected(ticketBox, () => openTicket(id, { force: true }));
      return;
    }
    state.oversight = oversight;
    state.oversightKey = key;
    showTicket(ticket, { reveal });
  } catch (err) {
    if (err.status === 404) {
      state.selected = null;
      clear(ticketBox).appendChild(h('p', { class: 'muted' }, '该工单已改派其他单位或不在本单位权限范围内。'));
    } else toast(err.message, 'error');
  }
}

for (const tab of document.querySelectorAll('.tabs [role=tab]')) {
  tab.addEventListener('click', () => {
    state.view = tab.dataset.view;
    for (const t of document.querySelectorAll('.tabs [role=tab]')) t.setAttribute('aria-selected', String(t === tab));
    refresh();
  });
}

function concernsList(msg) {
  if (state.items.some((t) => t.id === msg.ticket_id)) return true;
  return msg.type !== 'ticket_gone' && VIEW_STATES[state.view].has(msg.status);
}

const live = new LiveChannel({
  onEvent: (msg) => {
    if (concernsList(msg)) refresh();
    if (state.selected && state.selected.id === msg.ticket_id) {
      if (msg.type === 'ticket_gone') reloadSelected();
      else refreshSelected(ticketBox, reloadSelected);
    }
    if (msg.type === 'dispatch' && msg.lead_unit_id === me.unit_id) toast(`新工单派到本单位：${msg.ticket_number}`, 'ok');
  },
  onReconnect: () => refresh(),
  onResync: () => refresh(),
});
await load();
live.connect();
setInterval(tick, 1000);
setInterval(() => refresh(), 5 * 60 * 1000);  // re-sync the countdowns with the server's calendar
window.__desk = { live, state, clock };
