// Unit desk (承办单位): my unit's tickets by deadline with working-time countdowns, and the unit's actions:
// sign, reply, send back, extension, ask the citizen once for what is missing, answer supervision/accountability.
import {
  api, h, clear, $, toast, debounce, requireUser, topbar, LiveChannel, WorkClock, statusBadge, badge, fmtTime,
  fmtSpan, refreshSelected, KIND_LABELS,
} from './common.js';
import { renderTicket } from './ticket.js';

const me = await requireUser(['unit_handler', 'supervisor', 'admin']);
topbar(me, '承办台');
const units = await api('/api/units');
const myUnit = units.find((u) => u.id === me.unit_id);
$('#unit-name').textContent = myUnit ? myUnit.name : '全部单位';
const clock = new WorkClock();
const state = { items: [], view: 'open', selected: null };
const ticketBox = $('#ticket');
const ctx = {
  me, units, categories: [], showAnalysis: false,
  onDone: (updated) => { showTicket(updated); refresh(); },
  onConflict: () => state.selected && openTicket(state.selected.id),
};

function countdownText(info) {
  if (!info || !info.reply_due) return ['', ''];
  if (info.paused) return ['已暂停（待市民补充）', 'paused'];
  const light = clock.light(info);
  const left = clock.left(info, 'reply');
  const mode = info.clock ? '' : '工作时间';
  if (light === 'red') return [`已超期 ${fmtSpan(left, { working: !info.clock })}`, 'red'];
  return [`剩余${mode} ${fmtSpan(left, { working: !info.clock })}`, light];
}

function signText(info, t) {
  if (!info || info.sign_left_s === null || t.signed_at) return null;
  const left = clock.left(info, 'sign');
  return left < 0 ? `签收已超时 ${fmtSpan(left, { working: !info.clock })}` : `请在 ${fmtSpan(left, { working: !info.clock })} 内签收`;
}

function card(t) {
  const info = t.deadline;
  const [text, light] = countdownText(info);
  return h('li', { dataset: { id: t.id }, class: `card light-${light || 'none'} ${state.selected && state.selected.id === t.id ? 'selected' : ''}` },
    h('button', { type: 'button', class: 'item', onclick: () => openTicket(t.id) },
      h('div', { class: 'line1' }, h('span', { class: 'number' }, t.number), statusBadge(t.status),
        t.urgent ? badge('紧急', 'urgent') : null,
        t.unit && me.unit_id && t.unit.id !== me.unit_id ? badge('协办', 'co') : null,
        info && info.supervision_open ? badge('督办', 'warn') : null,
        info && info.accountability_open ? badge('问责', 'danger') : null,
        t.extension_pending ? badge('延期审批中', 'warn') : null),
      h('div', { class: 'line2 title' }, t.title || t.text.slice(0, 30)),
      h('div', { class: 'countdown', dataset: { role: 'countdown' } }, text),
      h('div', { class: 'line3 muted small' }, `答复时限 ${fmtTime(t.reply_due)}`, ' · ', KIND_LABELS[t.kind] || t.kind,
        signText(info, t) ? h('span', { class: 'sign-due', dataset: { role: 'sign' } }, ` · ${signText(info, t)}`) : null)));
}

function render() {
  const list = clear($('#unit-list'));
  for (const t of state.items) list.appendChild(card(t));
  if (!state.items.length) list.appendChild(h('li', { class: 'empty muted' }, state.view === 'open' ? '暂无待办工单' : '暂无待回访工单'));
  $('#unit-count').textContent = String(state.items.length);
}

function tick() {
  for (const li of document.querySelectorAll('#unit-list li[data-id]')) {
    const t = state.items.find((x) => x.id === Number(li.dataset.id));
    if (!t) continue;
    const [text, light] = countdownText(t.deadline);
    const el = li.querySelector('[data-role=countdown]');
    if (el && el.textContent !== text) el.textContent = text;
    li.className = li.className.replace(/light-\S+/, `light-${light || 'none'}`);
    const sign = li.querySelector('[data-role=sign]');
    const st = signText(t.deadline, t);
    if (sign && st) sign.textContent = ` · ${st}`;
  }
}

async function load() {
  const data = await api(`/api/desk/unit-queue?view=${state.view}`);
  clock.sync(data.server_time, data.periods);
  state.items = data.items;
  render();
  if (state.selected && !state.items.some((t) => t.id === state.selected.id)) {
    // It left this list (replied, returned…): keep it open but refresh it, or drop it if no longer ours.
    openTicket(state.selected.id);
  }
}
const refresh = debounce(() => load().catch((e) => toast(e.message, 'error')), 100);

function showTicket(ticket) {
  state.selected = ticket;
  renderTicket(ticketBox, ticket, ctx);
  for (const li of document.querySelectorAll('#unit-list li')) li.classList.toggle('selected', Number(li.dataset.id) === ticket.id);
  if (window.matchMedia('(max-width: 800px)').matches) ticketBox.scrollIntoView({ behavior: 'smooth' });
}

async function openTicket(id) {
  try {
    showTicket(await api(`/api/tickets/${id}`));
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

const live = new LiveChannel({
  onEvent: (msg) => {
    refresh();
    if (state.selected && state.selected.id === msg.ticket_id) {
      if (msg.type === 'ticket_gone') openTicket(msg.ticket_id);
      else refreshSelected(ticketBox, () => openTicket(msg.ticket_id));
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
