// Time on the desk: dates, spans in working time (a working day as long as the server's office hours), and the
// WorkClock that runs a countdown only inside the office periods the server sent.
import { config } from './config.js';

const pad = (n) => String(n).padStart(2, '0');

export function fmtTime(iso, withYear = false) {
  if (!iso) return '—';
  const d = new Date(iso);
  const date = `${withYear ? d.getFullYear() + '-' : ''}${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
  return `${date} ${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

/** Working time in one working day, in seconds (HOTLINE_OFFICE_HOURS on the server). */
export function workingDaySeconds() { return config().office_hours.day_seconds; }

/** "3个工作日2小时" style for working time (a day of the server's office hours), "2小时05分" for shorter spans. */
export function fmtSpan(seconds, { working = true } = {}) {
  const s = Math.abs(Math.round(seconds));
  const day = working ? workingDaySeconds() : 86400;
  const days = Math.floor(s / day);
  const rest = s - days * day;
  const hours = Math.floor(rest / 3600);
  const minutes = Math.floor((rest % 3600) / 60);
  const secs = rest % 60;
  if (days > 0) return `${days}${working ? '个工作日' : '天'}${hours}小时`;
  if (hours > 0) return `${hours}小时${pad(minutes)}分`;
  return `${minutes}分${pad(secs)}秒`;
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
