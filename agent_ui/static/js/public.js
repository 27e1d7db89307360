// The citizen's page: file a request (with the server's arithmetic challenge), wait for its ticket number on the
// receipt, and follow a ticket by number + the phone's last four digits. No account, no cookies; the receipt of
// the last submission is kept in localStorage so a reload keeps waiting for the number.
import { api } from './api.js';
import { h, $ } from './dom.js';
import { fmtTime } from './time.js';

const RECEIPT_KEY = 'hotline.public.receipt';
let challengeToken = '';

function showTab(name) {
  for (const [tab, panel] of [['tab-submit', 'submit'], ['tab-follow', 'follow']]) {
    $(`#${tab}`).setAttribute('aria-selected', String(panel === name));
    $(`#${panel}`).hidden = panel !== name;
  }
}
$('#tab-submit').addEventListener('click', () => showTab('submit'));
$('#tab-follow').addEventListener('click', () => showTab('follow'));

function waitText(err) {
  return err.status === 429 ? '操作太频繁，请稍后再试。' : err.message;
}

async function newQuestion() {
  try {
    const c = await api('/api/public/challenge', { auth: false });
    challengeToken = c.token;
    $('#req-question').textContent = c.question;
  } catch (err) {
    $('#req-question').textContent = waitText(err);
  }
  $('#req-answer').value = '';
}

function showError(box, message) { box.textContent = message; box.hidden = !message; }

const form = $('#req-form');
form.text.addEventListener('input', () => { $('#req-count').textContent = form.text.value.length; });
$('#req-new-question').addEventListener('click', newQuestion);

form.addEventListener('submit', async (e) => {
  e.preventDefault();
  const error = $('#req-error');
  const text = form.text.value.trim();
  if (text.length < 5) { showError(error, '请把诉求内容写清楚（至少5个字）。'); form.text.focus(); return; }
  const phone = form.phone.value.trim();
  if (phone && !/^\+?[0-9][0-9\- ]{4,30}$/.test(phone)) { showError(error, '手机号格式不正确。'); form.phone.focus(); return; }
  if (!form.answer.value.trim()) { showError(error, '请回答验证题。'); form.answer.focus(); return; }
  showError(error, '');
  const button = form.querySelector('button[type=submit]');
  button.disabled = true;
  try {
    const out = await api('/api/public/requests', { method: 'POST', auth: false, body: {
      text, location: form.location.value.trim() || null, name: form.name.value.trim() || null, phone: phone || null,
      confidential: form.confidential.checked, challenge_token: challengeToken, challenge_answer: form.answer.value.trim() } });
    localStorage.setItem(RECEIPT_KEY, JSON.stringify({ receipt: out.receipt, phone: Boolean(phone) }));
    form.reset();
    $('#req-count').textContent = '0';
    form.hidden = true;
    waitForNumber(out.receipt, Boolean(phone));
  } catch (err) {
    showError(error, err.status === 422 && /验证题/.test(err.message) ? err.message : `提交失败：${waitText(err)}`);
    newQuestion();
  } finally {
    button.disabled = false;
  }
});

/** Poll the receipt until the ticket has its number (the worker makes the ticket a moment after the submission). */
async function waitForNumber(receipt, withPhone) {
  const box = $('#receipt');
  box.hidden = false;
  box.replaceChildren(h('p', { class: 'pending' }, '已收到您的诉求，正在生成工单编号…'));
  for (let delay = 1000; ; delay = Math.min(delay * 1.5, 10_000)) {
    let state;
    try {
      state = await api(`/api/public/requests/${encodeURIComponent(receipt)}`, { auth: false });
    } catch (err) {
      if (err.status === 404) { localStorage.removeItem(RECEIPT_KEY); box.hidden = true; form.hidden = false; return; }
      state = { state: 'processing' };
    }
    if (state.state === 'done') { showNumber(state.number, withPhone); return; }
    if (state.state === 'failed') {
      box.replaceChildren(h('p', {}, '您的诉求已收到，生成工单时遇到问题，工作人员会尽快处理。也可拨打12345电话反映。'), anotherButton());
      localStorage.removeItem(RECEIPT_KEY);
      return;
    }
    await new Promise((resolve) => { setTimeout(resolve, delay); });
  }
}

function anotherButton() {
  return h('button', { type: 'button', class: 'link', onclick: () => {
    localStorage.removeItem(RECEIPT_KEY);
    $('#receipt').hidden = true;
    form.hidden = false;
    newQuestion();
  } }, '再反映一件事');
}

function showNumber(number, withPhone) {
  $('#receipt').replaceChildren(
    h('p', {}, '提交成功！您的工单编号是：'),
    h('p', { class: 'number', id: 'receipt-number' }, number),
    h('p', { class: 'hint' }, withPhone
      ? '请记下编号，凭编号和手机号后四位随时查询办理进度。'
      : '您没有留手机号，无法在网上查询进度；如需了解进展，请拨打12345并告知工单编号。'),
    withPhone ? h('button', { type: 'button', class: 'link', onclick: () => { $('#f-number').value = number; showTab('follow'); $('#f-last4').focus(); } }, '查询进度') : null,
    anotherButton());
  localStorage.removeItem(RECEIPT_KEY);
}

$('#follow-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  const error = $('#follow-error');
  const result = $('#follow-result');
  const number = $('#f-number').value.trim();
  const last4 = $('#f-last4').value.trim();
  result.hidden = true;
  if (!number || !/^[0-9]{4}$/.test(last4)) { showError(error, '请填写工单编号和手机号后四位（4位数字）。'); return; }
  showError(error, '');
  try {
    const t = await api(`/api/public/tickets/${encodeURIComponent(number)}?phone_last4=${encodeURIComponent(last4)}`, { auth: false });
    result.replaceChildren(h('dl', {},
      h('dt', {}, '工单编号'), h('dd', { class: 'number' }, t.number),
      h('dt', {}, '办理状态'), h('dd', { id: 'follow-status' }, t.status),
      t.unit ? [h('dt', {}, '承办单位'), h('dd', { id: 'follow-unit' }, t.unit)] : null,
      t.reply_due ? [h('dt', {}, '办结时限'), h('dd', {}, fmtTime(t.reply_due, true))] : null,
      h('dt', {}, '答复'), h('dd', { id: 'follow-reply' }, t.reply || '尚未答复，承办单位答复后会显示在这里。')));
    result.hidden = false;
  } catch (err) {
    showError(error, err.status === 404 ? '未找到该工单，请核对工单编号和手机号后四位。' : waitText(err));
  }
});

const saved = (() => { try { return JSON.parse(localStorage.getItem(RECEIPT_KEY) || 'null'); } catch { return null; } })();
newQuestion();
if (saved && saved.receipt) { form.hidden = true; waitForNumber(saved.receipt, saved.phone); }
