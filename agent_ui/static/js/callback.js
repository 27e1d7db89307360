// Callback queue (回访): call the citizen back, record solved + satisfaction; satisfied ones are closed in the same
// step, unsatisfied ones stay in "callback" and show up on the supervisor board.
import {
  api, h, clear, $, toast, debounce, requireUser, topbar, LiveChannel, statusBadge, fmtTime, fmtSpan,
} from './common.js';
import { performAction, historyList } from './ticket.js';

const me = await requireUser(['agent', 'dispatcher', 'supervisor']);
topbar(me, '回访');
const state = { items: [], selected: null };
const box = $('#cb-detail');

function card(t) {
  const waited = t.replied_at ? (Date.now() - Date.parse(t.replied_at)) / 1000 : null;
  return h('li', { dataset: { id: t.id }, class: `card ${state.selected === t.id ? 'selected' : ''}` },
    h('button', { type: 'button', class: 'item', onclick: () => open(t.id) },
      h('div', { class: 'line1' }, h('span', { class: 'number' }, t.number), statusBadge(t.status)),
      h('div', { class: 'line2 title' }, t.title || t.text.slice(0, 30)),
      h('div', { class: 'line3 muted small' },
        `${t.unit ? t.unit.name : '热线直接办结'} · 答复于 ${fmtTime(t.replied_at)}`,
        waited !== null ? ` · 已等待 ${fmtSpan(waited, { working: false })}` : '')));
}

async function load() {
  const data = await api('/api/desk/callbacks');
  state.items = data.items;
  const list = clear($('#cb-list'));
  for (const t of data.items) list.appendChild(card(t));
  if (!data.items.length) list.appendChild(h('li', { class: 'empty muted' }, '暂无待回访工单'));
  $('#cb-count').textContent = String(data.items.length);
}
const refresh = debounce(() => load().catch((e) => toast(e.message, 'error')), 150);

function radio(name, value, label, checked = false) {
  return h('label', { class: 'radio' }, h('input', { type: 'radio', name, value, required: true, checked }), label);
}

async function open(id) {
  let t;
  try { t = await api(`/api/tickets/${id}`); } catch (err) { toast(err.message, 'error'); return; }
  state.selected = t.id;
  for (const li of document.querySelectorAll('#cb-list li')) li.classList.toggle('selected', Number(li.dataset.id) === t.id);
  const phone = t.citizen && t.citizen.phone;
  const form = h('form', { class: 'callback-form', 'aria-label': '回访结果' },
    h('fieldset', {}, h('legend', {}, '问题是否解决'), radio('solved', 'true', '已解决'), radio('solved', 'false', '未解决')),
    h('fieldset', {}, h('legend', {}, '满意度'), radio('satisfaction', 'satisfied', '满意'),
      radio('satisfaction', 'basically_satisfied', '基本满意'), radio('satisfaction', 'unsatisfied', '不满意')),
    h('div', { class: 'field' }, h('label', { for: 'cb-note' }, '回访记录'), h('textarea', { id: 'cb-note', name: 'note', rows: 2 })),
    h('div', { class: 'buttons' }, h('button', { type: 'submit', class: 'primary', accesskey: 's' }, '提交回访 ', h('kbd', {}, 'S'))));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const satisfaction = form.satisfaction.value;
    const body = { solved: form.solved.value === 'true', satisfaction, note: form.note.value.trim() };
    try {
      const after = await performAction(t, 'callback', body);
      if (satisfaction !== 'unsatisfied' && after.allowed_actions.includes('close')) {
        await performAction(after, 'close', { note: '回访满意，归档' });
        toast(`${t.number} 回访完成并归档`, 'ok');
      } else {
        toast(`${t.number} 回访不满意，已转督办员审核`, 'warn');
      }
      clear(box).appendChild(h('p', { class: 'muted' }, '已完成。选择下一张工单。'));
      state.selected = null;
      refresh();
    } catch (err) {
      toast(`回访失败：${err.message}`, 'error');
    }
  });
  clear(box).append(
    h('header', { class: 'ticket-head' }, h('h2', {}, h('span', { class: 'number' }, t.number), ' ', h('span', { class: 'title' }, t.title))),
    h('section', { class: 'callee' }, h('h3', {}, '回访对象'),
      h('p', {}, t.citizen ? `${t.citizen.name || '未留姓名'} ` : '匿名（无法回访） ',
        phone ? h('a', { href: `tel:${phone}`, class: 'phone' }, phone) : null)),
    h('section', { class: 'complaint' }, h('h3', {}, '诉求内容'), h('p', { class: 'text' }, t.text)),
    h('section', { class: 'reply' }, h('h3', {}, `${t.unit ? t.unit.name : '热线'}的答复`), h('p', { class: 'text' }, t.reply_text || '—')),
    form, historyList(t));
  form.querySelector('input').focus();
}

const live = new LiveChannel({
  onEvent: (msg) => { if (['reply', 'answer', 'callback', 'close', 'reopen', 'merge'].includes(msg.type)) refresh(); },
  onReconnect: () => refresh(),
  onResync: () => refresh(),
});
await load();
live.connect();
window.__desk = { live, state };
