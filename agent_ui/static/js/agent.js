// Agent/dispatcher desk: the live triage queue, screen-pop of a caller's history, the intake form, and the
// actions on a ticket pre-filled from its stored analysis.
import { api } from './api.js';
import { labelOf, labels, policies, statusBadge } from './config.js';
import { h, clear, $, toast, badge, refreshSelected } from './dom.js';
import { LiveChannel } from './live.js';
import { coalesce } from './schedule.js';
import { fmtTime } from './time.js';
import { requireUser, topbar } from './topbar.js';
import { renderTicket, revealTicket, reworkBadge } from './ticket.js';
import { PhoneQueue } from './phone_queue.js';

const me = await requireUser();
topbar(me);
const [units, categories] = await Promise.all([api('/api/units'), api('/api/categories')]);
const state = { queue: [], selected: null, open: null, loads: 0 };
const TRIAGE_STATES = new Set(policies().triage_states);
const ticketBox = $('#ticket');
// The intake form's kinds: "自动识别" (the analysis decides), then every kind the server knows.
$('#in-kind').append(...Object.entries(labels().kind).map(([value, text]) => h('option', { value }, text)));

/**
 * The route the desk proposes now: the analysis' own, unless the ticket's category was corrected (更正分类) since;
 * then what the catalogue says for the new category (``GET /api/route``), with its explanation.
 */
async function currentRoute(ticket) {
  const a = ticket.analysis || {};
  const top = (a.categories || [])[0];
  const analysed = { unit_id: a.unit_id ?? null, unit_name: a.unit_name || null, co_unit_ids: a.co_unit_ids || [],
    explanation: a.route_explanation || '' };
  if (!ticket.category || (top && top.category_id === ticket.category.id)) return analysed;
  const params = new URLSearchParams({ category_id: ticket.category.id });
  if (ticket.area) params.set('area_id', ticket.area.id);
  try {
    const r = await api(`/api/route?${params}`);
    return { unit_id: r.unit ? r.unit.id : null, unit_name: r.unit ? r.unit.name : null,
      co_unit_ids: r.co_units.map((u) => u.id), explanation: r.explanation || '' };
  } catch (err) {
    toast(`无法按更正后的分类查询派单目录：${err.message}`, 'error');
    return { unit_id: null, unit_name: null, co_unit_ids: [], explanation: '' };
  }
}

function defaultsFrom(ticket, route) {
  const a = ticket.analysis || {};
  const top = (a.categories || [])[0];
  // 重办 goes back to the ticket's current lead unit (the dispatcher may still choose another), with the reason;
  // a send-back is decided afresh (no unit proposed); otherwise the proposed route and why.
  let dispatch = { unit_id: route.unit_id, co_unit_ids: route.co_unit_ids, note: route.explanation };
  if (ticket.status === 'reopened' && ticket.unit) {
    dispatch = { unit_id: ticket.unit.id, co_unit_ids: ticket.co_units,
      note: `重办（第 ${ticket.reopen_count} 次）：${ticket.reopen_reason || ''}` };
  } else if (ticket.unit && ticket.status === 'returned') {
    dispatch = { unit_id: null, co_unit_ids: [], note: '' };
  }
  return {
    dispatch,
    transfer: { line: a.emergency_line || ticket.emergency_line || '110' },
    recategorize: { category_id: top ? top.category_id : (ticket.category && ticket.category.id) },
    merge: {},
    answer: {},
    // 关联工单 after 转警: the request as recorded, for the agent to add what the unit is to do
    follow_up: { text: ticket.text, location: ticket.location },
  };
}

const ctx = {
  me, units, categories, showAnalysis: true,
  afterRender: () => keepDispatchNoteTrue(),
  openTicket: (id) => openTicket(id),
  backToList: () => backToList(),
  onDone: (updated, name) => {
    refreshQueue();
    // 关联工单: go on with the new ticket (it waits in the queue for dispatch)
    const made = name === 'follow_up' && [...updated.events].reverse().find((e) => e.type === 'follow_up');
    if (!made) { showTicket(updated); return; }
    toast(`已新建关联工单：${made.data.follow_up_number}（原工单 ${updated.number} 仍为已转警）`, 'ok');
    openTicket(made.data.follow_up_id, { reveal: true });
  },
  onConflict: () => state.selected && openTicket(state.selected.id),
  prefill: (action, values) => {
    if (!state.selected) return;
    Object.assign(ctx.defaults[action] = ctx.defaults[action] || {}, values);
    ctx.open = action;
    renderTicket(ticketBox, state.selected, ctx);
  },
};

async function showTicket(ticket, { reveal = false } = {}) {
  state.selected = ticket;
  const route = await currentRoute(ticket);
  if (state.selected !== ticket) return;  // another ticket was opened meanwhile
  ctx.route = route;
  ctx.defaults = defaultsFrom(ticket, route);
  ctx.open = null;
  renderTicket(ticketBox, ticket, ctx);
  for (const li of document.querySelectorAll('#queue-list li')) li.classList.toggle('selected', Number(li.dataset.id) === ticket.id);
  if (reveal) revealTicket(ticketBox);
}

/** 返回列表 (phones): back up to the open ticket's place in the queue, or the queue's top. */
function backToList() {
  const id = state.selected && state.selected.id;
  const item = id && document.querySelector(`#queue-list li[data-id='${id}'] button.item`);
  (item ? item.closest('li') : $('#queue-list')).scrollIntoView({ block: 'center' });
  if (item) item.focus({ preventScroll: true });
}

/**
 * The pre-filled 派单说明 explains one unit's rule: once the dispatcher picks another unit it would tell that unit
 * something false, so it is emptied (and comes back if the proposed unit is chosen again); a note the dispatcher
 * wrote themselves is never touched.
 */
function keepDispatchNoteTrue() {
  const form = ticketBox.querySelector('form.act-dispatch');
  // (a 重办 note says why the supervisor reopened it: true whichever unit gets it)
  if (!form || !form.elements.note || !form.elements.unit_id || state.selected.status === 'reopened') return;
  const proposed = ctx.defaults.dispatch;
  const prefilled = proposed.note || '';
  let auto = true;
  form.elements.note.addEventListener('input', () => { auto = false; });
  form.elements.unit_id.addEventListener('change', () => {
    if (!auto) return;
    form.elements.note.value = Number(form.elements.unit_id.value) === proposed.unit_id ? prefilled : '';
  });
}

async function openTicket(id, { ifChanged = false, reveal = !ifChanged } = {}) {
  try {
    const t = await api(`/api/tickets/${id}`);
    // A live event about the ticket on screen (often our own action, already shown): redraw only if it changed.
    if (ifChanged && state.selected && state.selected.id === t.id && state.selected.version === t.version) return;
    showTicket(t, { reveal });
  } catch (err) {
    toast(`无法打开工单：${err.message}`, 'error');
  }
}

function queueItem(t) {
  return h('li', { dataset: { id: t.id }, class: `${t.urgent ? 'urgent' : ''} ${state.selected && state.selected.id === t.id ? 'selected' : ''}` },
    h('button', { type: 'button', class: 'item', onclick: () => openTicket(t.id) },
      h('div', { class: 'line1' }, h('span', { class: 'number' }, t.number), statusBadge(t.status),
        t.urgent ? badge('紧急', 'urgent') : null, reworkBadge(t), badge(labelOf('kind', t.kind))),
      h('div', { class: 'line2 title' }, t.title || t.text.slice(0, 30)),
      h('div', { class: 'line3 muted small' }, `${fmtTime(t.received_at)} · ${labelOf('channel', t.channel)}`,
        t.analysis && t.analysis.unit_name ? ` · 建议：${t.analysis.unit_name}` : '')));
}

async function loadQueue() {
  state.loads += 1;
  const data = await api('/api/desk/triage');
  state.queue = data.items;
  const list = clear($('#queue-list'));
  for (const t of data.items) list.appendChild(queueItem(t));
  $('#queue-count').textContent = String(data.items.length);
  if (!data.items.length) list.appendChild(h('li', { class: 'empty muted' }, '暂无待处理工单'));
}
const refreshQueue = coalesce(() => loadQueue().catch((e) => toast(e.message, 'error')));
const reloadSelected = coalesce(() => (state.selected ? openTicket(state.selected.id, { ifChanged: true }) : null));

/** A live event changes the queue only if its ticket is on it now or enters one of the triage states. */
function concernsQueue(msg) {
  return TRIAGE_STATES.has(msg.status) || state.queue.some((t) => t.id === msg.ticket_id);
}

// --- screen-pop -------------------------------------------------------------------------------------------------
$('#call-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  const phone = $('#call-phone').value.trim();
  if (!phone) return;
  const box = $('#screenpop');
  box.hidden = false;
  clear(box).appendChild(h('p', { class: 'muted' }, '查询中…'));
  try {
    const data = await api(`/api/desk/citizens?phone=${encodeURIComponent(phone)}`);
    clear(box).append(
      h('h2', {}, `来电 ${data.phone}`, data.citizens.length ? `（${data.citizens.map((c) => c.name || '未留姓名').join('、')}）` : '（新来电人）'),
      data.tickets.length
        ? h('ol', { class: 'history-tickets' }, data.tickets.map((t) => h('li', {},
          h('button', { type: 'button', class: 'link', onclick: () => openTicket(t.id) }, t.number), ' ',
          statusBadge(t.status), ' ', h('span', {}, t.title), ' ', h('span', { class: 'muted small' }, fmtTime(t.received_at, true)))))
        : h('p', { class: 'muted' }, '此号码没有历史工单。'),
      // The number as typed: a dispatcher's answer shows it masked, the new ticket needs it in full.
      h('button', { type: 'button', onclick: () => openIntake(phone, data.citizens[0]) }, '为此来电新建工单'));
  } catch (err) {
    clear(box).appendChild(h('p', { class: 'error' }, `查询失败：${err.message}`));
  }
});

// --- intake -----------------------------------------------------------------------------------------------------
function openIntake(phone = '', citizen = null) {
  const form = $('#intake-form');
  form.hidden = false;
  form.reset();
  form.phone.value = phone || $('#call-phone').value.trim();
  if (citizen && citizen.name) form.name.value = citizen.name;
  form.text.focus();
}
$('#new-ticket').addEventListener('click', () => openIntake());
$('#intake-cancel').addEventListener('click', () => { $('#intake-form').hidden = true; });
$('#intake-form').addEventListener('keydown', (e) => {
  if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) { e.preventDefault(); e.currentTarget.requestSubmit(); }
});
$('#intake-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  const form = e.currentTarget;
  const body = { channel: 'phone', text: form.text.value.trim(), confidential: form.confidential.checked };
  if (form.title.value.trim()) body.title = form.title.value.trim();
  if (form.location.value.trim()) body.location = form.location.value.trim();
  if (form.kind.value) body.kind = form.kind.value;
  if (form.phone.value.trim() || form.name.value.trim()) {
    body.citizen = {};
    if (form.phone.value.trim()) body.citizen.phone = form.phone.value.trim();
    if (form.name.value.trim()) body.citizen.name = form.name.value.trim();
  }
  try {
    const ticket = await api('/api/intake', { method: 'POST', body });
    toast(`已受理：${ticket.number}`, 'ok');
    form.hidden = true;
    await openTicket(ticket.id);
    refreshQueue();
  } catch (err) {
    toast(`受理失败：${err.message}`, 'error');
  }
});

// --- keyboard ---------------------------------------------------------------------------------------------------
document.addEventListener('keydown', (e) => {
  const tag = (e.target.tagName || '').toLowerCase();
  if (['input', 'textarea', 'select'].includes(tag) || e.altKey || e.ctrlKey || e.metaKey) return;
  if (e.key === 'j' || e.key === 'k') {
    const items = [...document.querySelectorAll('#queue-list li[data-id] button.item')];
    if (!items.length) return;
    const current = items.indexOf(document.activeElement);
    const next = e.key === 'j' ? Math.min(items.length - 1, current + 1) : Math.max(0, current - 1);
    items[current < 0 ? 0 : next].focus();
    e.preventDefault();
  } else if (e.key === '/' || e.key === 'p' || e.key === 'P') {
    // P (as the 弹屏 button says), or /: type the caller's number; Enter then pops their history.
    $('#call-phone').focus();
    $('#call-phone').select();
    e.preventDefault();
  } else if (e.key === 'n' || e.key === 'N') {
    // New ticket; if the form is already open, back into it without wiping what was typed.
    if ($('#intake-form').hidden) openIntake(); else $('#in-text').focus();
    e.preventDefault();
  }
});

// --- live -------------------------------------------------------------------------------------------------------
// 来电排队 (the phone queue): hidden where the phone channel is off; the screen-pop opens the draft ticket.
const phoneQueue = new PhoneQueue($('#phone-queue'), { me, openTicket: (id) => openTicket(id) });
const live = new LiveChannel({
  onEvent: (msg) => {
    if (concernsQueue(msg)) refreshQueue();
    if (state.selected && state.selected.id === msg.ticket_id) refreshSelected(ticketBox, reloadSelected);
  },
  onNotice: (msg) => phoneQueue.notice(msg),
  onReconnect: () => { refreshQueue(); phoneQueue.refresh(); },
  onResync: () => { refreshQueue(); phoneQueue.refresh(); },
});
await Promise.all([loadQueue(), phoneQueue.start()]);
live.connect();
window.__desk = { live, state, phoneQueue };
