// 来电排队 on the agent desk: the callers waiting in the phone queue (GET /api/phone/queue, numbers masked by the
// server per role), redrawn on every desk notice of kind phone_queue; 接听下一个 takes the oldest call to this
// agent's device and opens its draft ticket (the screen-pop); 三方通话 adds an emergency line to a held call.
// Where the city enables the browser phone, the Twilio Voice SDK is loaded (voice_sdk.js) and calls ring here.
import { api } from './api.js';
import { statusBadge } from './config.js';
import { h, clear, $, toast, badge } from './dom.js';
import { coalesce } from './schedule.js';
import { fmtTime } from './time.js';

const LINES = [['110', '110 报警'], ['119', '119 火警'], ['120', '120 急救'], ['122', '122 交通事故']];

export class PhoneQueue {
  constructor(box, { me, openTicket }) {
    this.box = box;
    this.me = me;
    this.openTicket = openTicket;
    this.enabled = false;
    this.items = [];
    this.held = null;
    this.refresh = coalesce(() => this.load().catch((e) => toast(`来电排队刷新失败：${e.message}`, 'error')));
    $('#pq-next', box).addEventListener('click', () => this.takeNext());
    $('#pq-next', box).hidden = me.role !== 'agent';
  }

  async start() {
    try {
      await this.load();
    } catch (err) {
      if (err.status === 404 || err.status === 403) return;  // the phone channel is off here, or not for this role
      toast(`来电排队加载失败：${err.message}`, 'error');
      return;
    }
    this.enabled = true;
    this.box.hidden = false;
    if (this.me.role === 'agent') this.browserPhone();
  }

  notice(msg) {
    if (msg.kind === 'phone_queue' && this.enabled) this.refresh();
  }

  async load() {
    const data = await api('/api/phone/queue');
    this.items = data.items;
    const list = clear($('#pq-list', this.box));
    $('#pq-count', this.box).textContent = String(data.items.length);
    for (const call of data.items) list.appendChild(this.item(call));
    if (!data.items.length) list.appendChild(h('li', { class: 'empty muted' }, '暂无排队来电'));
  }

  item(call) {
    const t = call.ticket;
    const a = (t && t.analysis) || {};
    const top = (a.categories || [])[0];
    return h('li', { class: 'pq-call', dataset: { id: call.id } },
      h('div', { class: 'line1' }, h('span', { class: 'pq-phone' }, call.phone || '未显示号码'),
        h('span', { class: 'muted small' }, `排队自 ${fmtTime(call.queued_at)}`),
        t ? h('button', { type: 'button', class: 'link', onclick: () => this.openTicket(t.id) }, t.number) : null),
      t ? h('p', { class: 'pq-text' }, t.text) : h('p', { class: 'pq-text muted' }, '来电人未描述诉求'),
      t ? h('div', { class: 'muted small pq-analysis' },
        top ? `建议分类：${top.label}` : '未识别分类',
        a.unit_name ? ` · 建议承办：${a.unit_name}` : '',
        t.urgent ? ' · ' : '', t.urgent ? badge('紧急', 'urgent') : null) : null,
      call.earlier.length
        ? h('ol', { class: 'pq-earlier small' }, call.earlier.map((e) => h('li', {},
          h('button', { type: 'button', class: 'link', onclick: () => this.openTicket(e.id) }, e.number), ' ',
          statusBadge(e.status), ' ', e.title, ' ', h('span', { class: 'muted' }, fmtTime(e.received_at, true)))))
        : h('p', { class: 'muted small' }, '此号码没有历史工单。'));
  }

  async takeNext() {
    const button = $('#pq-next', this.box);
    button.disabled = true;
    try {
      const taken = await api('/api/phone/queue/next', { method: 'POST' });
      toast(`已接听 ${taken.call.phone || ''}，正在接通您的${taken.device}`, 'ok');
      this.showHeld(taken.call);
      if (taken.call.ticket) await this.openTicket(taken.call.ticket.id);
      this.refresh();
    } catch (err) {
      toast(err.message, err.status === 404 ? 'info' : 'error');
    } finally {
      button.disabled = false;
    }
  }

  showHeld(call) {
    this.held = call;
    const select = h('select', { name: 'line', 'aria-label': '紧急线路' },
      LINES.map(([value, text]) => h('option', { value }, text)));
    const box = clear($('#pq-held', this.box));
    box.hidden = false;
    box.append(h('span', {}, `通话中：${call.phone || '未显示号码'}`), select,
      h('button', { type: 'button', class: 'pq-three-party', onclick: () => this.threeParty(call, select.value) },
        '三方通话'),
      h('button', { type: 'button', onclick: () => { box.hidden = true; this.held = null; } }, '结束'));
  }

  async threeParty(call, line) {
    try {
      await api(`/api/phone/queue/${call.id}/three-party`, { method: 'POST', body: { line } });
      toast(`已发起三方通话，正在接入 ${line}`, 'ok');
      if (call.ticket) await this.openTicket(call.ticket.id);
    } catch (err) {
      toast(`三方通话失败：${err.message}`, 'error');
    }
  }

  async browserPhone() {
    let token;
    try {
      token = await api('/api/phone/voice-token');
    } catch {
      return;  // 404: the city puts calls through to each agent's own phone or SIP address
    }
    const { startBrowserPhone } = await import('./voice_sdk.js');
    startBrowserPhone(token, $('#pq-phone', this.box));
  }
}
