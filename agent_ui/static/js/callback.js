// Callback queue (回访): call the citizen back, record solved + satisfaction; satisfied ones are closed in the same
// step, unsatisfied ones stay in "callback" and show up on the supervisor board. A call nobody answers is recorded
// as an attempt (未接通) and the ticket stays in the queue.
//
// A satisfied callback is two requests (callback, then close). If the close fails the callback is already saved
// and the ticket sits in "callback": the page says exactly that and keeps it on the list (待归档) until it is closed.
import { api } from './api.js';
import { labelOf, labels, policies, statusBadge } from './config.js';
import { h, clear, $, toast, badge, refreshSelected } from './dom.js';
import { LiveChannel } from './live.js';
import { coalesce } from './schedule.js';
import { fmtSpan, fmtTime } from './time.js';
import { requireUser, topbar } from './topbar.js';
import { performAction, historyList } from './ticket.js';

const me = await requireUser();
topbar(me);
const state = { items: [], selected: null, version: null, busy: null, loads: 0 };  // busy: a ticket id we are acting on
const box = $('#cb-detail');
// Waiting for the callback (the server's callback states), and called back but not yet closed.
const LATE_STATES = new Set(policies().callback_states);
const LISTED_STATES = new Set([...LATE_STATES, 'callback']);
const ATTEMPTS_BEFORE_CLOSE = policies().callback_attempts_before_close;
const NO_ANSWER = ['无人接听', '关机', '占线', '空号/停机', '拒接'];

const firstLine = (text) => (text || '').split(/\r?\n/).map((l) => l.trim()).find(Boolean) || '';
/** Called back as satisfied (or basically) but not archived: only the close is missing. */
const needsClose = (t) => t.status === 'callback' && t.satisfaction && t.satisfaction !== 'unsatisfied';

/** The callback is due within one working day of the reply (callback_due, computed by the server's calendar). */
const callbackLate = (t) => LATE_STATES.has(t.status) && t.callback_due && Date.now() > Date.parse(t.callback_due);

function card(t) {
  const waited = t.replied_at ? (Date.now() - Date.parse(t.replied_at)) / 1000 : null;
  const reply = firstLine(t.reply_text);
  const phone = t.citizen && t.citizen.phone;  // masked by the server for roles that see masked numbers
  // A missed call (still 已受理 in this queue): 回拨 rings the agent's own device, then the citizen (phone channel).
  const missed = t.status === 'received' && t.channel === 'phone' && me.role === 'agent';
  return h('li', { dataset: { id: t.id }, class: `card ${state.selected === t.id ? 'selected' : ''} ${needsClose(t) ? 'to-close' : ''}` },
    missed ? h('button', { type: 'button', class: 'cb-dial small', onclick: () => dialBack(t) }, '回拨') : null,
    h('button', { type: 'button', class: 'item', onclick: () => open(t.id) },
      h('div', { class: 'line1' }, h('span', { class: 'number' }, t.number), statusBadge(t.status),
        needsClose(t) ? badge('待归档', 'warn') : null,
        callbackLate(t) ? badge('回访超时', 'danger') : null,
        h('span', { class: 'cb-phone', dataset: { role: 'phone' } }, phone || '未留电话')),
      h('div', { class: 'line2 title' }, t.title || t.text.slice(0, 30)),
      reply ? h('div', { class: 'cb-reply small', dataset: { role: 'reply' } }, h('span', { class: 'k' }, '答复：'), h('span', {}, reply)) : null,
      h('div', { class: 'line3 muted small' },
        `${t.unit ? t.unit.name : '热线直接办结'} · 答复于 ${fmtTime(t.replied_at)}`,
        waited !== null ? ` · 已等待 ${fmtSpan(waited, { working: false })}` : '',
        t.callback_due && LATE_STATES.has(t.status) ? ` · 回访时限 ${fmtTime(t.callback_due)}` : '')));
}

async function dialBack(t) {
  try {
    const placed = await api(`/api/phone/callbacks/${t.id}/call`, { method: 'POST' });
    toast(placed.replayed ? '此未接来电已回拨过，正在处理中' : `正在回拨：先接通您的${placed.device}，再呼叫市民`, 'ok');
  } catch (err) {
    toast(`回拨失败：${err.message}`, 'error');
  }
}

async function load() {
  state.loads += 1;
  const [queue, called] = await Promise.all([
    api('/api/desk/callbacks'),
    api('/api/tickets?status=callback&sort=oldest&page_size=200'),
  ]);
  state.items = [...called.items.filter(needsClose), ...queue.items];
  const list = clear($('#cb-list'));
  for (const t of state.items) list.appendChild(card(t));
  if (!state.items.length) list.appendChild(h('li', { class: 'empty muted' }, '暂无待回访工单'));
  $('#cb-count').textContent = String(state.items.length);
}
const refresh = coalesce(() => load().catch((e) => toast(e.message, 'error')));
const reloadSelected = coalesce(() => (state.selected ? open(state.selected, { ifChanged: true }) : null));

function radio(name, value, label, checked = false) {
  return h('label', { class: 'radio' }, h('input', { type: 'radio', name, value, required: true, checked }), label);
}

function done(message) {
  clear(box).appendChild(h('p', { class: 'muted' }, message));
  state.selected = null;
  refresh();
}

async function closeTicket(t) {
  try {
    await performAction(t, 'close', { note: '回访满意，归档' });
    toast(`${t.number} 回访完成并归档`, 'ok');
    done('已完成。选择下一张工单。');
  } catch (err) {
    // The callback is saved either way: say so, keep the ticket on the list and offer the close again.
    toast(`${t.number} 回访结果已保存，但归档失败：${err.message}。工单仍在回访列表（待归档），可重试归档。`, 'error');
    refresh();
    open(t.id);
  }
}

function callbackForm(t) {
  const form = h('form', { class: 'callback-form', 'aria-label': '回访结果' },
    h('fieldset', {}, h('legend', {}, '问题是否解决'), radio('solved', 'true', '已解决'), radio('solved', 'false', '未解决')),
    h('fieldset', {}, h('legend', {}, '满意度'),
      Object.entries(labels().satisfaction).map(([value, text]) => radio('satisfaction', value, text))),
    h('div', { class: 'field' }, h('label', { for: 'cb-note' }, '回访记录'), h('textarea', { id: 'cb-note', name: 'note', rows: 2 })),
    h('div', { class: 'buttons' }, h('button', { type: 'submit', class: 'primary', accesskey: 's' }, '提交回访 ', h('kbd', {}, 'S'))));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const button = form.querySelector('button[type=submit]');
    button.disabled = true;
    const satisfaction = form.satisfaction.value;
    const body = { solved: form.solved.value === 'true', satisfaction, note: form.note.value.trim() };
    state.busy = t.id;  // our own events must not re-render the form under us
    try {
      let after;
      try {
        after = await performAction(t, 'callback', body);
      } catch (err) {
        toast(`回访失败：${err.message}`, 'error');
        button.disabled = false;
        if (err.status === 409) open(t.id);
        return;
      }
      if (satisfaction !== 'unsatisfied' && after.allowed_actions.includes('close')) {
        await closeTicket(after);
      } else if (satisfaction !== 'unsatisfied') {
        toast(`${t.number} 回访结果已保存（${labelOf('satisfaction', satisfaction)}），但您无权归档；请督办员归档。`, 'warn');
        done('回访已记录。选择下一张工单。');
      } else {
        toast(`${t.number} 回访不满意，已转督办员审核`, 'warn');
        done('已完成。选择下一张工单。');
      }
    } finally {
      state.busy = null;
    }
  });
  return form;
}

/** Failed attempts of this round: those after the latest reply or direct answer (as the workflow counts them). */
function roundAttempts(t) {
  let n = 0;
  for (const e of t.events || []) {
    if (e.type === 'reply' || e.type === 'answer') n = 0;
    else if (e.type === 'callback_attempt') n += 1;
  }
  return n;
}

/** 未接通: the call was not answered; the attempt goes into the history and the ticket stays in the queue. */
function attemptForm(t) {
  const attempts = roundAttempts(t);
  const form = h('form', { class: 'attempt-form', 'aria-label': '回访未接通' },
    h('h3', {}, '电话未接通'),
    h('div', { class: 'field' }, h('label', { for: 'cb-attempt-reason' }, '未接通原因'),
      h('select', { id: 'cb-attempt-reason', name: 'reason' }, NO_ANSWER.map((r) => h('option', { value: r }, r)))),
    h('div', { class: 'field' }, h('label', { for: 'cb-attempt-note' }, '补充说明（可选）'),
      h('input', { id: 'cb-attempt-note', name: 'extra', maxlength: 200, autocomplete: 'off' })),
    h('div', { class: 'buttons' },
      h('button', { type: 'submit', class: 'attempt' }, '未接通'),
      h('span', { class: 'muted small' }, attempts ? `已尝试 ${attempts} 次未接通` : '')));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const button = form.querySelector('button[type=submit]');
    button.disabled = true;
    const extra = form.extra.value.trim();
    const note = `未接通：${form.reason.value}${extra ? `（${extra}）` : ''}`;
    state.busy = t.id;
    try {
      // An event-only note: no version, it overwrites nothing; the reply is the ticket with its new version.
      const updated = await api(`/api/tickets/${t.id}/actions/callback_attempt`, { method: 'POST', body: { note } });
      toast(`${t.number} 已记录未接通（第 ${attempts + 1} 次），工单保留在回访列表`, 'ok');
      showDetail(updated);
      refresh();
    } catch (err) {
      toast(`记录未接通失败：${err.message}`, 'error');
      button.disabled = false;
    } finally {
      state.busy = null;
    }
  });
  return form;
}

/** A supervisor may archive a replied ticket whose citizen could not be reached after several attempts. */
function unreachableForm(t) {
  const form = h('form', { class: 'unreachable-form', 'aria-label': '无法联系市民，归档' },
    h('div', { class: 'field' }, h('label', { for: 'cb-unreachable-note' }, `已 ${roundAttempts(t)} 次未接通：归档理由`),
      h('textarea', { id: 'cb-unreachable-note', name: 'note', rows: 2, required: true, minlength: 2 })),
    h('div', { class: 'buttons' }, h('button', { type: 'submit' }, '无法联系，归档')));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    state.busy = t.id;
    try {
      await performAction(t, 'close', { note: form.note.value.trim() });
      toast(`${t.number} 已归档（多次回访未接通）`, 'ok');
      done('已归档。选择下一张工单。');
    } catch (err) {
      toast(`归档失败：${err.message}`, 'error');
    } finally {
      state.busy = null;
    }
  });
  return form;
}

function closeForm(t) {
  const button = h('button', { type: 'button', class: 'primary' }, '归档');
  button.addEventListener('click', async () => {
    button.disabled = true;
    state.busy = t.id;
    try { await closeTicket(t); } finally { state.busy = null; button.disabled = false; }
  });
  return h('section', { class: 'to-close-notice', role: 'status' },
    h('p', {}, `回访已记录（${labelOf('satisfaction', t.satisfaction)}，${t.solved ? '已解决' : '未解决'}），但工单尚未归档。`),
    h('div', { class: 'buttons' }, button));
}

function showDetail(t) {
  state.selected = t.id;
  state.version = t.version;
  for (const li of document.querySelectorAll('#cb-list li')) li.classList.toggle('selected', Number(li.dataset.id) === t.id);
  const phone = t.citizen && t.citizen.phone;
  const actions = [];
  if (needsClose(t)) actions.push(closeForm(t));
  else if ((t.allowed_actions || []).includes('callback')) {
    actions.push(callbackForm(t));
    if ((t.allowed_actions || []).includes('callback_attempt')) actions.push(attemptForm(t));
    if (t.status === 'replied' && (t.allowed_actions || []).includes('close') && roundAttempts(t) >= ATTEMPTS_BEFORE_CLOSE) {
      actions.push(unreachableForm(t));
    }
  } else actions.push(h('p', { class: 'muted' }, '此工单当前无需回访。'));
  clear(box).append(
    h('header', { class: 'ticket-head' }, h('h2', {}, h('span', { class: 'number' }, t.number), ' ', h('span', { class: 'title' }, t.title)),
      h('div', { class: 'badges' }, statusBadge(t.status))),
    h('section', { class: 'callee' }, h('h3', {}, '回访对象'),
      h('p', {}, t.citizen ? `${t.citizen.name || '未留姓名'} ` : '未留联系方式（无法回访） ',
        phone ? h('a', { href: `tel:${phone}`, class: 'phone' }, phone) : null)),
    h('section', { class: 'complaint' }, h('h3', {}, '诉求内容'), h('p', { class: 'text' }, t.text)),
    h('section', { class: 'reply' }, h('h3', {}, `${t.unit ? t.unit.name : '热线'}的答复`), h('p', { class: 'text' }, t.reply_text || '—')),
    ...actions, historyList(t));
  const first = box.querySelector('form input, section.to-close-notice button');
  if (first) first.focus();
}

async function open(id, { ifChanged = false } = {}) {
  let t;
  try { t = await api(`/api/tickets/${id}`); } catch (err) { toast(err.message, 'error'); return; }
  if (ifChanged && state.selected === t.id && state.version === t.version) return;  // e.g. our own action's event
  showDetail(t);
}

function concernsList(msg) {
  return LISTED_STATES.has(msg.status) || state.items.some((t) => t.id === msg.ticket_id);
}

const live = new LiveChannel({
  onEvent: (msg) => {
    if (concernsList(msg)) refresh();
    if (state.selected === msg.ticket_id && state.busy !== msg.ticket_id) refreshSelected(box, reloadSelected);
  },
  onReconnect: () => refresh(),
  onResync: () => refresh(),
});
await load();
live.connect();
window.__desk = { live, state };
