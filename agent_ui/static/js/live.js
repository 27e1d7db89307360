// The live channel: the WebSocket to /ws, the event ids already seen (also across a reload), replay after a
// reconnect, and the connection light in the top bar.
import { STORAGE, token, toLogin } from './api.js';
import { $, toast } from './dom.js';

const SEEN_KEEP = 300;  // ids remembered across a page reload (the server re-sends up to 500 ids below the last)

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
  constructor({ onEvent, onHello, onPresence, onResync, onReconnect, onNotice } = {}) {
    this.handlers = { onEvent, onHello, onPresence, onResync, onReconnect, onNotice };
    this.seen = new Set();
    this.seenOrder = [];
    this.duplicates = 0;
    this.saveTimer = null;
    try {
      for (const id of JSON.parse(sessionStorage.getItem(STORAGE.seenEventIds) || '[]')) {
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
    const v = sessionStorage.getItem(STORAGE.lastEventId);
    return v === null ? null : Number(v);
  }

  set lastEventId(value) {
    if (value === null || value === undefined) return;
    const current = this.lastEventId;
    if (current === null || value > current) sessionStorage.setItem(STORAGE.lastEventId, String(value));
  }

  remember(id) {
    this.seen.add(id);
    this.seenOrder.push(id);
    if (this.seenOrder.length > 5000) this.seen.delete(this.seenOrder.shift());
    if (this.saveTimer === null) {
      this.saveTimer = setTimeout(() => {
        this.saveTimer = null;
        sessionStorage.setItem(STORAGE.seenEventIds, JSON.stringify(this.seenOrder.slice(-SEEN_KEEP)));
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
        sessionStorage.setItem(STORAGE.lastEventId, String(msg.last_event_id));
      }
      this.handlers.onHello && this.handlers.onHello(msg);
      if (reconnect && this.handlers.onReconnect) this.handlers.onReconnect(msg);
      return;
    }
    if (msg.type === 'presence') { this.handlers.onPresence && this.handlers.onPresence(msg); return; }
    // A desk notice (no ticket event, never replayed): e.g. kind phone_queue, the phone queue changed.
    if (msg.type === 'desk_notice') { this.handlers.onNotice && this.handlers.onNotice(msg); return; }
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
