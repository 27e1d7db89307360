// Admin desk, channels: every channel's state and stored messages; for each outside channel (电话/Twilio, 微信公众号,
// 网络问政论坛, Open311) the addresses to paste into Twilio / WeChat / the forum or give to Open311 clients, its
// settings' state (never a secret), and a 测试 form: the server sends one signed request to itself through the
// channel's real route, and the card follows the stored message until the worker has made its ticket. Failed
// messages are listed and replayed below.
import { api } from './api.js';
import { labelOf } from './config.js';
import { h, clear, $, toast } from './dom.js';
import { fmtTime } from './time.js';

const INBOUND_STATES = { accepted: '待处理', processing: '处理中', done: '已生成工单', failed: '失败' };
const SETTING_STATES = { set: '已设置', unset: '未设置', demo: '演示值' };
/** What the simulated citizen writes or says, and who sends it, per channel. */
const SAMPLES = {
  phone: { text: '小区门口的路灯坏了一个星期了', sender: '来电号码（默认 13800000000）' },
  wechat: { text: '澄江街道建设路有人占道经营', sender: '市民 openid（默认测试账号）' },
  forum: { text: '建设路88号门口的路灯坏了一个星期，晚上很黑，希望尽快修好', sender: '网友昵称', place: true },
  open311: { text: '建设路与澄江路交叉口有人占道摆摊，堵住了盲道', place: true },
};
const FOLLOW_MS = 1000;
const FOLLOW_TRIES = 120;

/** The absolute form of an address (a path when HOTLINE_PUBLIC_BASE_URL is not set). */
function absolute(url) { return url.startsWith('/') ? new URL(url, location.origin).href : url; }

function copyButton(text) {
  return h('button', { type: 'button', class: 'small', onclick: async () => {
    try { await navigator.clipboard.writeText(text); toast('已复制', 'ok'); } catch { toast('无法复制，请手动选择', 'error'); }
  } }, '复制');
}

/** Poll the stored message until the worker made its ticket (or failed), showing each state. */
async function follow(inboundId, line) {
  for (let i = 0; i < FOLLOW_TRIES; i += 1) {
    let m;
    try { m = await api(`/api/inbound/${inboundId}`); } catch (err) { line.textContent = `无法查询消息 #${inboundId}：${err.message}`; return; }
    if (m.ticket_number) {
      line.replaceChildren('已生成工单 ', h('strong', { dataset: { role: 'ticket-number' } }, m.ticket_number));
      line.closest('.ch-result').dataset.ticket = m.ticket_number;
      return;
    }
    if (m.state === 'failed') { line.textContent = `处理失败：${m.last_error || ''}（可在下方重新处理）`; return; }
    line.textContent = `消息 #${m.id} ${INBOUND_STATES[m.state] || m.state}，等待生成工单…`;
    await new Promise((resolve) => { setTimeout(resolve, FOLLOW_MS); });
  }
  line.textContent = `消息 #${inboundId} 仍未生成工单：请检查后台处理进程（hotline worker）是否在运行`;
}

function channelCard(c) {
  const sample = SAMPLES[c.channel] || { text: '' };
  const result = h('div', { class: 'ch-result', 'aria-live': 'polite' });
  const text = h('textarea', { name: 'text', rows: 2, required: true, minlength: 2, maxlength: 500 });
  text.value = sample.text;
  const sender = sample.sender ? h('input', { name: 'sender', maxlength: 64, placeholder: sample.sender }) : null;
  const place = sample.place ? h('input', { name: 'place', maxlength: 200, placeholder: '地点（可不填）' }) : null;
  const form = h('form', { class: 'ch-test' },
    h('label', {}, c.channel === 'phone' ? '来电人说的话' : '测试内容', text),
    sender ? h('label', {}, '发送人 ', sender) : null, place ? h('label', {}, '地点 ', place) : null,
    h('button', { type: 'submit', class: 'primary', disabled: !c.enabled }, '测试'));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const body = { text: text.value.trim() };
    if (sender && sender.value.trim()) body.sender = sender.value.trim();
    if (place && place.value.trim()) body.place = place.value.trim();
    result.replaceChildren(h('p', { class: 'muted' }, '正在发送签名测试请求…'));
    delete result.dataset.ticket;
    let out;
    try { out = await api(`/api/channels/${c.channel}/test`, { method: 'POST', body }); } catch (err) {
      result.replaceChildren(h('p', { class: 'error' }, `测试失败：${err.message}`));
      return;
    }
    result.dataset.accepted = String(out.accepted);
    const progress = h('p', { dataset: { role: 'progress' } });
    result.replaceChildren(
      h('p', { class: out.accepted ? 'ok' : 'error', dataset: { role: 'outcome' } },
        out.accepted ? `渠道已接收（HTTP ${out.status_code}）` : (out.error || '渠道没有接收')),
      out.reply ? h('p', {}, '渠道答复：', h('span', { dataset: { role: 'reply' } }, out.reply)) : null,
      out.steps.length ? h('ol', {}, out.steps.map((s) => h('li', {}, s))) : null,
      out.inbound_id ? progress : null);
    if (out.inbound_id) follow(out.inbound_id, progress);
  });
  return h('section', { class: 'panel ch-card', dataset: { channel: c.channel } },
    h('h3', {}, c.label, ' ', h('span', { class: c.enabled ? 'badge ok' : 'badge' }, c.enabled ? '已开通' : '未开通')),
    c.note ? h('p', { class: 'muted small' }, c.note) : null,
    h('dl', { class: 'addr' }, c.addresses.map((a) => [h('dt', {}, a.label),
      h('dd', {}, h('code', { dataset: { role: 'address' } }, absolute(a.url)), ' ', copyButton(absolute(a.url)))]).flat()),
    c.addresses.some((a) => a.url.startsWith('/')) ? h('p', { class: 'muted small' },
      '未设置 HOTLINE_PUBLIC_BASE_URL：以上地址按本页地址显示，正式接入前请设置公网 https 地址') : null,
    h('dl', {}, c.settings.map((s) => [h('dt', {}, s.name),
      h('dd', { class: `st-${s.state}`, dataset: { setting: s.name } }, SETTING_STATES[s.state] || s.state, s.shown ? `：${s.shown}` : '')]).flat()),
    form, result);
}

export function channelsTab(ctx) {
  const body = $('#ch-table tbody');
  const failedBody = $('#f-table tbody');
  const cards = $('#ch-cards');
  async function load() {
    const [channels, failed] = await Promise.all([api('/api/channels'), api('/api/inbound?state=failed')]);
    clear(body);
    for (const c of channels) {
      body.appendChild(h('tr', { dataset: { channel: c.channel } },
        h('td', {}, c.label),
        h('td', {}, c.enabled ? '已开通' : '未开通'),
        h('td', {}, c.url ? h('code', {}, absolute(c.url)) : '—'),
        h('td', { class: 'small' }, Object.entries(c.counts).map(([k, v]) => `${INBOUND_STATES[k] || k} ${v}`).join('，') || '—')));
    }
    if (!cards.childElementCount) cards.replaceChildren(...channels.filter((c) => c.testable).map(channelCard));
    $('#f-count').textContent = failed.items.length;
    clear(failedBody);
    if (!failed.items.length) failedBody.appendChild(h('tr', {}, h('td', { colspan: 7, class: 'muted' }, '没有处理失败的消息')));
    for (const m of failed.items) {
      failedBody.appendChild(h('tr', { dataset: { id: m.id } },
        h('td', {}, String(m.id)), h('td', {}, labelOf('channel', m.channel)), h('td', {}, fmtTime(m.received_at)),
        h('td', { class: 'num' }, String(m.attempts)), h('td', { class: 'small error' }, m.last_error || ''),
        h('td', { class: 'small' }, String(m.payload.text || '').slice(0, 80)),
        h('td', {}, h('button', { type: 'button', onclick: async () => {
          if (await ctx.change(api(`/api/inbound/${m.id}/replay`, { method: 'POST' }), `消息 #${m.id} 已重新排队处理`)) load();
        } }, '重新处理'))));
    }
  }
  $('#f-refresh').addEventListener('click', load);
  return { load };
}
