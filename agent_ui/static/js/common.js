// Shared helpers of the desk pages: API calls with the session's token, a DOM builder that only ever inserts
// text (citizen text is data, never markup), the live channel, working-time countdowns and the top bar.

const TOKEN_KEY = 'hotline.token';
const ME_KEY = 'hotline.me';
const LAST_EVENT_KEY = 'hotline.lastEventId';
const SEEN_KEY = 'hotline.seenEventIds';
const SEEN_KEEP = 300;  // ids remembered across a page reload (the server re-sends up to 500 ids below the last)

export const ROLE_LABELS = {
  agent: '话务员', dispatcher: '派单员', unit_handler: '承办单位', supervisor: '督办员', admin: '管理员',
};
export const STATUS_LABELS = {
  received: '已受理', answered: '直接办结', transferred: '已转警', merged: '已并案', dispatched: '已派单',
  signed: '已签收', replied: '已答复', callback: '已回访', closed: '已归档', returned: '已退单', reopened: '重办',
  awaiting_citizen: '待补充',
};
export const KIND_LABELS = {
  consultation: '咨询', help: '求助', complaint: '投诉', report: '举报', suggestion: '建议', praise: '表扬',
};
export const CHANNEL_LABELS = {
  phone: '电话', wechat: '微信', forum: '网络论坛', web: '网站', open311: 'Open311', walk_in: '来访', email: '邮件',
};
export const SATISFACTION_LABELS = { satisfied: '满意', basically_satisfied: '基本满意', unsatisfied: '不满意' };
export const EVENT_LABELS = {
  receive: '受理', answer: '直接答复', transfer: '转警', merge: '并案', dispatch: '派单', sign: '签收',
  return: '退单', refuse_return: '驳回退单', request_info: '一次性告知', provide_info: '市民已补充',
  reply: '办结答复', request_extension: '申请延期', decide_extension: '延期审批', callback: '回访', close: '归档',
  reopen: '重办', remind: '催办', supervise: '督办', respond_supervision: '督办回复', accountability: '问责',
  recategorize: '更正分类', comment: '备注', deadline_warning: '时限预警', overdue: '超期', escalation: '超期升级',
  ticket_gone: '已改派他单位', callback_attempt: '回访未接通', supervision_overdue: '督办超期',
};
export const HOME_BY_ROLE = {
  agent: '/desk/agent', dispatcher: '/desk/agent', unit_handler: '/desk/unit', supervisor: '/desk/supervisor',
  admin: '/desk/supervisor',
};

export function token() { return sessionStorage.getItem(TOKEN_KEY); }

export function saveLogin(accessToken, me) {
  sessionStorage.setItem(TOKEN_KEY, accessToken);
  sessionStorage.setItem(ME_KEY, JSON.stringify(me));
}

export function logout() {
  sessionStorage.removeItem(TOKEN_KEY);
  sessionStorage.removeItem(ME_KEY);
  sessionStorage.removeItem(LAST_EVENT_KEY);
  sessionStorage.removeItem(SEEN_KEY);
  location.assign('/');
}

export class ApiError extends Error {
  constructor(status, detail) { super(detail); this.status = status; }
}

export async function api(path, { method = 'GET', body, auth = true } = {}) {
  const headers = { Accept: 'application/json' };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (auth) {
    const t = token();
    if (!t) { toLogin(); throw new ApiError(401, '请先登录'); }
    headers.Authorization = `Bearer ${t}`;
  }
  const response = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  if (response.status === 401 && auth) { toLogin(); throw new ApiError(401, '登录已过期'); }
  const data = response.status === 204 ? null : await response.json().catch(() => null);
  if (!response.ok) throw new ApiError(response.status, (data && data.detail) || `HTTP ${response.status}`);
  return data;
}

function toLogin() {
  sessionStorage.removeItem(TOKEN_KEY);
  location.assign(`/?next=${encodeURIComponent(location.pathname)}`);
}

/** Build an element. Children that are strings become text nodes: nothing here ever parses HTML. */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === 'class') el.className = value;
    else if (key === 'text') el.textContent = value;
    else if (key === 'dataset') Object.assign(el.dataset, value);
    else if (key === 'style' && typeof value === 'object') Object.assign(el.style, value);
    else if (key.startsWith('on') && typeof value === 'function') el.addEventListener(key.slice(2), value);
    else if (value === true) el.setAttribute(key, '');
    else el.setAttribute(key, String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children) {
    if (child === undefined || child === null || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else if (child instanceof Node) el.appendChild(child);
    else el.appendChild(document.createTextNode(String(child)));
  }
}

export function clear(el) { while (el.firstChild) el.removeChild(el.firstChild); return el; }
export function $(selector, root = document) { return root.querySelector(selector); }

const pad = (n) => String(n).padStart(2, '0');
export function fmtTime(iso, withYear = false) {
  if (!iso) return '—';
  const d = new Date(iso);
  const date = `${withYear ? d.getFullYear() + '-' : ''}${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
  return `${date} ${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

/** "3个工作日2小时" style for working time (7.5 h a day by default), "2小时05分" for shorter spans. */
export function fmtSpan(seconds, { working = true, dayLength = 7.5 * 3600 } = {}) {
  const s = Math.abs(Math.round(seconds));
  const day = working ? dayLength : 86400;
  const days = Math.floor(s / day);
  const rest = s - days * day;
  const hours = Math.floor(rest / 3600);
  const minutes = Math.floor((rest % 3600) / 60);
  const secs = rest % 60;
  if (days > 0) return `${days}${working ? '个工作日' : '天'}${hours}小时`;
  if (hours > 0) return `${hours}小时${pad(minutes)}分`;
  return `${minutes}分${pad(secs)}秒`;
}

let toastTimer = null;
/** A short message in the top bar's band (it covers no form); errors stay longer; a click dismisses it. */
export function toast(message, kind = 'info') {
  let box = $('#toast');
  if (!box) {
    box = h('div', { id: 'toast', role: 'status', 'aria-live': 'polite', title: '点击关闭' });
    box.addEventListener('click', () => { box.hidden = true; });
    document.body.appendChild(box);
  }
  box.className = `toast ${kind}`;
  box.textContent = message;
  box.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { box.hidden = true; }, kind === 'error' ? 8000 : 4000);
}

export function debounce(fn, ms) {
  let timer = null;
  return (...args) => { clearTimeout(timer); timer = setTimeout(() => fn(...args), ms); };
}

/**
 * Coalesce reloads triggered by live events: the first call after a quiet spell runs ``fn`` after ``gather`` ms
 * (events of one transaction arrive together), later calls join the next run, and runs start at least
 * ``interval`` ms apart and never overlap (a call during a run schedules one more run after it). So a burst of
 * events costs at most one request per ``interval``, and the first change still shows within gather + request.
 */
export function coalesce(fn, { gather = 40, interval = 300 } = {}) {
  let timer = null;
  let running = false;
  let again = false;
  let lastStart = -Infinity;
  const run = async () => {
    timer = null;
    running = true;
    lastStart = Date.now();
    try { await fn(); } catch (err) { console.error(err); } finally {
      running = false;
      if (again) { again = false; schedule(); }
    }
  };
  function schedule() {
    if (running) { again = true; return; }
    if (timer) return;
    timer = setTimeout(run, Math.max(gather, lastStart + interval - Date.now()));
  }
  return schedule;
}

/** Check the session and the role; returns the current user or redirects to the login page. */
export async function requireUser(roles) {
  if (!token()) { toLogin(); throw new Error('not logged in'); }
  const me = await api('/api/me');
  sessionStorage.setItem(ME_KEY, JSON.stringify(me));
  if (roles && !roles.includes(me.role)) {
    const home = HOME_BY_ROLE[me.role] || '/';
    document.body.replaceChildren(h('main', { class: 'denied' },
      h('h1', {}, '无权访问此页面'),
      h('p', {}, `您的角色是「${ROLE_LABELS[me.role] || me.role}」。`),
      h('a', { href: home }, '返回我的工作台')));
    throw new Error('wrong role');
  }
  return me;
}

/** The top bar: title, navigation for the role, connection light, user, logout. */
export function topbar(me, title) {
  const links = [];
  if (['agent', 'dispatcher', 'supervisor'].includes(me.role)) links.push(['/desk/agent', '受理台']);
  if (['agent', 'dispatcher', 'supervisor'].includes(me.role)) links.push(['/desk/callback', '回访']);
  if (['unit_handler', 'supervisor', 'admin'].includes(me.role)) links.push(['/desk/unit', '承办台']);
  if (['supervisor', 'admin'].includes(me.role)) links.push(['/desk/supervisor', '督办看板']);
  const bar = h('header', { class: 'topbar' },
    h('div', { class: 'brand' }, h('span', { class: 'logo', 'aria-hidden': 'true' }, '12345'), h('span', {}, title)),
    h('nav', { 'aria-label': '页面导航' }, links.map(([href, label]) =>
      h('a', { href, class: location.pathname === href ? 'active' : '', 'aria-current': location.pathname === href ? 'page' : null }, label))),
    h('div', { class: 'who' },
      h('span', { id: 'live-state', class: 'live off', title: '实时连接状态', role: 'status' }, '连接中…'),
      h('span', { class: 'user' }, `${me.name}（${ROLE_LABELS[me.role] || me.role}）`),
      h('button', { type: 'button', class: 'link', onclick: logout }, '退出')));
  document.body.prepend(bar);
  return bar;
}

function setLiveState(state) {
  const el = $('#live-state');
  if (!el) return;
  el.className = `live ${state}`;
  el.textContent = { on: '实时', off: '已断开，重连中…', connecting: '连接中…' }[state] || state;
  document.body.dataset.live = state;
}

/**
 * The live channel: token as the first message (never in the URL), replay from the last seen event id after a
 * reconnect, answers the server's pings, reconnects with backoff, drops duplicate event ids.
 *
 * Event ids are not a high-water mark (transactions commit out of id order), so the server replays, after a
 * reconnect, also the events just below ``last_event_id`` that may have committed late; this side keeps the ids
 * it has seen (the recent ones also across a page reload, in sessionStorage) and drops those it already handled.
 */
export class LiveChannel {
  constructor({ onEvent, onHello, onPresence, onResync, onReconnect } = {}) {
    this.handlers = { onEvent, onHello, onPresence, onResync, onReconnect };
    this.seen = new Set();
    this.seenOrder = [];
    this.duplicates = 0;
    this.saveTimer = null;
    try {
      for (const id of JSON.parse(sessionStorage.getItem(SEEN_KEY) || '[]')) {
        if (Number.isInteger(id) && !this.seen.has(id)) { this.seen.add(id); this.seenOrder.push(id); }
      }
    } catch { /* a damaged entry only costs a few duplicate refreshes */ }
    this.attempt = 0;
    this.ws = null;
    this.connectedOnce = false;
    this.lastMessageAt = Date.now();
    this.pingInterval = 20;
    this.stopped = false;
    setInterval(() => this.watchdog(), 5000);
  }

  get lastEventId() {
    const v = sessionStorage.getItem(LAST_EVENT_KEY);
    return v === null ? null : Number(v);
  }

  set lastEventId(value) {
    if (value === null || value === undefined) return;
    const current = this.lastEventId;
    if (current === null || value > current) sessionStorage.setItem(LAST_EVENT_KEY, String(value));
  }

  remember(id) {
    this.seen.add(id);
    this.seenOrder.push(id);
    if (this.seenOrder.length > 5000) this.seen.delete(this.seenOrder.shift());
    if (this.saveTimer === null) {
      this.saveTimer = setTimeout(() => {
        this.saveTimer = null;
        sessionStorage.setItem(SEEN_KEY, JSON.stringify(this.seenOrder.slice(-SEEN_KEEP)));
      }, 250);
    }
  }

  connect() {
    setLiveState('connecting');
    const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
    const ws = new WebSocket(`${scheme}://${location.host}/ws`);
    this.ws = ws;
    ws.onopen = () => {
      const first = { token: token() };
      if (this.lastEventId !== null) first.last_event_id = this.lastEventId;
      ws.send(JSON.stringify(first));
    };
    ws.onmessage = (e) => this.receive(e.data);
    ws.onclose = (e) => {
      if (this.ws !== ws) return;
      setLiveState('off');
      if (e.code === 4401 || e.code === 4403) { toast(`实时连接被拒绝：${e.reason || e.code}`, 'error'); setTimeout(toLogin, 1500); return; }
      if (this.stopped) return;
      const delay = Math.min(10000, 500 * 2 ** this.attempt) * (0.5 + Math.random() / 2);
      this.attempt += 1;
      setTimeout(() => this.connect(), delay);
    };
  }

  receive(raw) {
    this.lastMessageAt = Date.now();
    let msg;
    try { msg = JSON.parse(raw); } catch { return; }
    if (msg.type === 'ping') { this.send({ type: 'pong', t: msg.t }); return; }
    if (msg.type === 'pong') return;
    if (msg.type === 'hello') {
      this.attempt = 0;
      this.pingInterval = msg.ping_interval || 20;
      setLiveState('on');
      const reconnect = this.connectedOnce;
      this.connectedOnce = true;
      // The server's newest id is below ours only when its database was reset: start over from its count.
      if (this.lastEventId === null || msg.last_event_id < this.lastEventId) {
        sessionStorage.setItem(LAST_EVENT_KEY, String(msg.last_event_id));
      }
      this.handlers.onHello && this.handlers.onHello(msg);
      if (reconnect && this.handlers.onReconnect) this.handlers.onReconnect(msg);
      return;
    }
    if (msg.type === 'presence') { this.handlers.onPresence && this.handlers.onPresence(msg); return; }
    if (msg.type === 'resync') { this.handlers.onResync && this.handlers.onResync(msg); return; }
    if (msg.event_id !== undefined) {
      if (this.seen.has(msg.event_id)) { this.duplicates += 1; return; }
      this.remember(msg.event_id);
      this.lastEventId = msg.event_id;
      this.handlers.onEvent && this.handlers.onEvent(msg);
    }
  }

  send(obj) { if (this.ws && this.ws.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(obj)); }

  watchdog() {
    // The server pings every ping_interval seconds; silence for 2.5 intervals means a dead connection.
    if (this.ws && this.ws.readyState === WebSocket.OPEN && Date.now() - this.lastMessageAt > this.pingInterval * 2500) {
      this.ws.close();
    }
  }
}

/**
 * Countdown in working time: the server says how many (working) seconds were left at server_time and which office
 * periods lie ahead; the clock runs only inside them (or always, for urgent clock-time tickets).
 */
export class WorkClock {
  constructor() { this.offset = 0; this.periods = []; this.base = Date.now(); }

  sync(serverTime, periods) {
    const server = Date.parse(serverTime);
    this.offset = server - Date.now();
    this.base = server;
    if (periods) this.periods = periods.map(([a, b]) => [Date.parse(a), Date.parse(b)]);
  }

  now() { return Date.now() + this.offset; }

  workingElapsed(from, to) {
    let total = 0;
    for (const [a, b] of this.periods) {
      const s = Math.max(a, from);
      const e = Math.min(b, to);
      if (e > s) total += e - s;
    }
    return total / 1000;
  }

  left(info, which = 'reply') {
    if (info.stopped) return null;
    const base = info[`${which}_left_s`];
    if (base === null || base === undefined) return null;
    if (info.paused) return base;
    const now = this.now();
    const from = info.base_ms ?? this.base;  // an info fetched on its own carries its own server_time
    return base - (info.clock ? (now - from) / 1000 : this.workingElapsed(from, now));
  }

  /**
   * Red after reply_due, yellow from yellow_at (≤ 25 % left), else green; evaluated in the browser. A ticket
   * already answered has no light any more: 'done' (on time) or 'done-late'.
   */
  light(info) {
    if (!info || !info.reply_due) return null;
    if (info.stopped) return info.on_time === false ? 'done-late' : 'done';
    const now = this.now();
    if (now > Date.parse(info.reply_due)) return 'red';
    if (info.yellow_at && now >= Date.parse(info.yellow_at)) return 'yellow';
    return 'green';
  }
}

export function badge(text, kind = '') { return h('span', { class: `badge ${kind}` }, text); }

export function statusBadge(status) { return badge(STATUS_LABELS[status] || status, `st-${status}`); }

/**
 * Reload the open ticket after a live event, unless the user is typing in one of its forms: then show a notice
 * instead of wiping what they typed.
 */
export function refreshSelected(container, reload) {
  const active = document.activeElement;
  const typing = active && container.contains(active) && ['INPUT', 'TEXTAREA', 'SELECT'].includes(active.tagName);
  if (!typing) { reload(); return; }
  if (container.querySelector('.stale-notice')) return;
  container.prepend(h('div', { class: 'stale-notice', role: 'status' }, '此工单刚刚有更新。',
    h('button', { type: 'button', class: 'small', onclick: reload }, '刷新')));
}
