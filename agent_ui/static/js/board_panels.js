// Panels of the supervisor board beyond deadlines and charts: hot spots (热点/突发聚集), supervision orders (督办单),
// accountability cases (问责) and unit scorecards (考核排名). Each panel loads from the REST API, re-renders on
// live events (debounced by the caller's schedule()), and opens tickets in the board's dialog. Every text that
// came from a citizen or a unit goes in through h() (text nodes), never as HTML.
import { api, token } from './api.js';
import { labelOf, labels, statusBadge } from './config.js';
import { h, clear, $, toast, badge } from './dom.js';
import { debounce } from './schedule.js';
import { fmtTime } from './time.js';

export const CASE_GROUPS = [
  ['opened', '待单位说明'], ['explained', '已说明待裁定'], ['upheld', '已维持'], ['dismissed', '已撤销'],
];
const DECIDED_SHOWN = 20; // decided cases and responded orders: the most recent ones only

const pct = (v) => (v === null || v === undefined ? '—' : `${(v * 100).toFixed(1)}%`);
const hours = (v) => (v === null || v === undefined ? '—' : `${Number(v).toFixed(1)}`);

/**
 * Live reloads: the first call schedules ``fn`` ``ms`` later and calls meanwhile join that run (unlike a debounce,
 * a steady stream of events cannot postpone it for ever); runs never overlap — a call during a run schedules one
 * more run after it.
 */
function later(fn, ms) {
  let timer = null;
  let running = false;
  let again = false;
  const run = async () => {
    timer = null;
    running = true;
    try { await fn(); } catch (e) { toast(e.message, 'error'); } finally {
      running = false;
      if (again) { again = false; schedule(); }
    }
  };
  function schedule() {
    if (running) { again = true; return; }
    if (timer === null) timer = setTimeout(run, ms);
  }
  return schedule;
}

function ticketButton(number, id, openDetail) {
  return h('button', { type: 'button', class: 'link number', onclick: (e) => { e.stopPropagation(); openDetail(id); } },
    number);
}

function failed(box, err) {
  clear(box).appendChild(h('p', { class: 'error' }, `加载失败：${err.message}`));
}

// --- hot spots ----------------------------------------------------------------------------------------------------

export function hotspotsPanel({ openDetail, onCount }) {
  const list = $('#hs-list');
  const state = { data: null, open: new Set(), members: new Set() };

  function spotItem(c) {
    const open = state.open.has(c.key);
    const drill = h('div', { class: 'hs-drill', hidden: !open },
      h('table', { class: 'data' },
        h('thead', {}, h('tr', {}, h('th', {}, '编号'), h('th', {}, '标题'), h('th', {}, '状态'), h('th', {}, '受理时间'))),
        h('tbody', {}, c.tickets.map((t) => h('tr', { dataset: { id: t.id }, class: 'clickable', onclick: () => openDetail(t.id) },
          h('td', {}, ticketButton(t.number, t.id, openDetail)), h('td', {}, t.title), h('td', {}, statusBadge(t.status)),
          h('td', {}, fmtTime(t.received_at)))))),
      c.size > c.tickets.length ? h('p', { class: 'muted small' }, `仅列出最新的 ${c.tickets.length} 件`) : null);
    const toggle = h('button', { type: 'button', class: 'small hs-toggle', 'aria-expanded': String(open) },
      open ? '收起工单' : `查看 ${c.size} 件工单`);
    toggle.addEventListener('click', () => {
      const nowOpen = drill.hidden;
      drill.hidden = !nowOpen;
      toggle.setAttribute('aria-expanded', String(nowOpen));
      toggle.textContent = nowOpen ? '收起工单' : `查看 ${c.size} 件工单`;
      item.classList.toggle('expanded', nowOpen);
      if (nowOpen) state.open.add(c.key); else state.open.delete(c.key);
    });
    const path = c.area_path.length > 1 ? c.area_path.slice(0, -1).join(' / ') : '';
    const item = h('li', { class: `hs-spot ${c.size >= 2 * state.data.min_size ? 'big' : ''} ${open ? 'expanded' : ''}`,
      dataset: { key: c.key, area: c.area_id ?? '' } },
      h('div', { class: 'hs-head' },
        h('strong', { class: 'hs-area' }, c.area_name || '未识别地区'), path ? h('span', { class: 'muted small' }, path) : null,
        h('span', { class: 'badge danger hs-size' }, `${c.size} 件`),
        h('span', { class: 'muted small' }, `在办 ${c.open_count}`)),
      h('div', { class: 'hs-time small' }, `首件 ${fmtTime(c.first_at)} · 最新 ${fmtTime(c.last_at)}`),
      h('div', { class: 'hs-terms' }, c.top_terms.map((w) => badge(w, 'term'))),
      h('ul', { class: 'hs-titles' }, c.sample_titles.map((t) => h('li', {}, t))),
      toggle, drill);
    return item;
  }

  function render() {
    const data = state.data;
    clear(list);
    $('#hs-count').textContent = String(data.clusters.length);
    $('#hs-note').textContent = `近 ${data.hours} 小时内已识别地区的工单 ${data.scanned} 件；相似诉求 ≥ ${data.min_size} 件即列为热点`;
    state.members = new Set(data.clusters.flatMap((c) => c.ticket_ids));
    if (!data.clusters.length) { list.appendChild(h('li', { class: 'empty muted' }, '当前时间窗内没有突发聚集')); }
    for (const c of data.clusters) list.appendChild(spotItem(c));
    onCount && onCount(data.clusters.length);
  }

  async function load() {
    const params = new URLSearchParams({ hours: $('#hs-hours').value, min_size: $('#hs-min').value });
    try {
      state.data = await api(`/api/desk/hotspots?${params}`);
      render();
    } catch (err) { failed(list, err); }
  }
  $('#hs-hours').addEventListener('change', () => load());
  $('#hs-min').addEventListener('change', () => load());
  return { load, schedule: later(load, 1500), has: (id) => state.members.has(id), state };
}

// --- supervision orders -------------------------------------------------------------------------------------------

export function supervisionPanel({ openDetail, clock }) {
  const message = $('#sv-msg');
  const state = { open: [], responded: [] };

  function orderRow(o) {
    const late = o.state === 'open' && Date.parse(o.due_at) < clock.now();
    return h('tr', { class: `clickable ${late ? 'sv-overdue' : ''}`, dataset: { id: o.id, ticket: o.ticket_id, due: o.due_at, state: o.state },
      onclick: () => openDetail(o.ticket_id) },
      h('td', {}, ticketButton(o.ticket_number, o.ticket_id, openDetail)),
      h('td', {}, o.unit_name || `单位#${o.unit_id}`),
      h('td', { class: 'sv-note' }, o.note),
      h('td', { class: 'sv-due' }, fmtTime(o.due_at), late ? h('span', { class: 'overdue-text' }, ' 已超期') : null),
      h('td', { class: 'sv-response' }, o.response
        ? [h('span', {}, o.response), h('div', { class: 'muted small' }, `回复于 ${fmtTime(o.responded_at)}`)]
        : h('span', { class: 'muted' }, '待回复')));
  }

  function group(title, key, rows, empty) {
    const tbody = h('tbody', { dataset: { group: key } },
      h('tr', { class: 'group' }, h('th', { colspan: '5' }, title, ' ', h('span', { class: 'count' }, String(rows.length)))));
    if (!rows.length) tbody.appendChild(h('tr', { class: 'empty' }, h('td', { colspan: '5', class: 'muted' }, empty)));
    for (const o of rows) tbody.appendChild(orderRow(o));
    return tbody;
  }

  function render() {
    const now = clock.now();
    const overdue = state.open.filter((o) => Date.parse(o.due_at) < now);
    const waiting = state.open.filter((o) => Date.parse(o.due_at) >= now);
    const recent = state.responded
      .filter((o) => o.responded_at && now - Date.parse(o.responded_at) < 7 * 86400e3)
      .sort((a, b) => Date.parse(b.responded_at) - Date.parse(a.responded_at)).slice(0, DECIDED_SHOWN);
    const table = $('#sv-table');
    for (const old of table.querySelectorAll('tbody')) old.remove();
    table.append(group('超期未回复', 'overdue', overdue, '无超期督办'), group('待回复', 'open', waiting, '无待回复督办'),
      group('近7天已回复', 'responded', recent, '近7天无回复'));
    $('#sv-count').textContent = String(state.open.length);
    state.key = overdue.map((o) => o.id).join(',');
  }

  async function load() {
    try {
      const [open, responded] = await Promise.all([
        api('/api/supervision?state=open&limit=1000'), api('/api/supervision?state=responded&limit=1000')]);
      state.open = open;
      state.responded = responded;
      clear(message);
      render();
    } catch (err) { failed(message, err); }
  }
  /** Re-render when an open order passes its due time on the open board. */
  function tick() {
    const now = clock.now();
    const key = state.open.filter((o) => Date.parse(o.due_at) < now).map((o) => o.id).join(',');
    if (key !== state.key) render();
  }
  return { load, schedule: later(load, 400), tick, state };
}

// --- accountability cases -----------------------------------------------------------------------------------------

export function accountabilityPanel({ openDetail, me }) {
  const box = $('#ac-groups');
  const state = { cases: [], editing: null, pending: false };
  const canDecide = me.role === 'supervisor';

  function decisionForm(c, decision) {
    const label = decision === 'uphold' ? '维持' : '撤销';
    const text = h('textarea', { name: 'note', rows: 2, required: true, maxlength: 2000, placeholder: `请填写${label}问责的理由` });
    const form = h('form', { class: 'ac-form', dataset: { decision } },
      h('label', { class: 'small muted' }, `${label}理由`), text,
      h('div', { class: 'buttons' },
        h('button', { type: 'submit', class: decision === 'dismiss' ? 'primary' : 'danger' }, `确认${label}问责`),
        h('button', { type: 'button', class: 'cancel', onclick: () => { state.editing = null; flush(); } }, '取消')));
    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      const note = text.value.trim();
      if (!note) { toast(`请填写${label}理由`, 'warn'); text.focus(); return; }
      const button = form.querySelector('button[type=submit]');
      button.disabled = true;
      try {
        await api(`/api/tickets/${c.ticket_id}/actions/accountability`, {
          method: 'POST', body: { decision, case_id: c.id, note } });
        toast(`已${label}问责：${c.ticket_number}`, 'ok');
        state.editing = null;
        await load();
      } catch (err) {
        toast(`操作失败：${err.message}`, 'error');
        button.disabled = false;
        if (err.status === 409) { state.editing = null; await load(); }
      }
    });
    return form;
  }

  function caseItem(c) {
    const decided = c.state === 'upheld' || c.state === 'dismissed';
    const li = h('li', { class: `ac-case st-${c.state}`, dataset: { caseId: c.id, ticket: c.ticket_id, state: c.state } },
      h('div', { class: 'line1' }, ticketButton(c.ticket_number, c.ticket_id, openDetail),
        h('strong', {}, c.unit_name || `单位#${c.unit_id}`),
        badge(labelOf('case_rule', c.rule), c.rule === 'manual' ? '' : 'warn'),
        h('span', { class: 'muted small' }, `立案 ${fmtTime(c.opened_at)} · #${c.id}`)),
      h('p', { class: 'ac-reason' }, h('span', { class: 'k' }, '问责事由：'), h('span', {}, c.reason)),
      h('p', { class: 'ac-explanation' }, h('span', { class: 'k' }, '单位说明：'),
        c.explanation ? h('span', {}, c.explanation) : h('span', { class: 'muted' }, '单位尚未说明'),
        c.explained_at ? h('span', { class: 'muted small' }, `（${fmtTime(c.explained_at)}）`) : null),
      decided ? h('p', { class: 'ac-decision' }, h('span', { class: 'k' }, c.state === 'upheld' ? '维持理由：' : '撤销理由：'),
        h('span', {}, c.decision_note || '—'), h('span', { class: 'muted small' }, `（${fmtTime(c.decided_at)}）`)) : null);
    if (!decided && canDecide) {
      const editing = state.editing && state.editing.id === c.id ? state.editing.decision : null;
      const buttons = h('div', { class: 'buttons ac-buttons' },
        h('button', { type: 'button', class: 'ac-uphold', onclick: () => edit(c, 'uphold') }, '维持问责'),
        h('button', { type: 'button', class: 'ac-dismiss', onclick: () => edit(c, 'dismiss') }, '撤销问责'));
      li.appendChild(buttons);
      if (editing) li.appendChild(decisionForm(c, editing));
    }
    return li;
  }

  function edit(c, decision) {
    state.editing = { id: c.id, decision };
    render();
    const text = box.querySelector(`li[data-case-id="${c.id}"] textarea`);
    text && text.focus();
  }

  function render() {
    clear(box);
    const recent = (s) => state.cases.filter((c) => c.state === s)
      .sort((a, b) => Date.parse(b.decided_at || b.opened_at) - Date.parse(a.decided_at || a.opened_at));
    for (const [key, title] of CASE_GROUPS) {
      const all = recent(key);
      const shown = key === 'upheld' || key === 'dismissed' ? all.slice(0, DECIDED_SHOWN) : all.reverse();
      box.appendChild(h('section', { class: `ac-group ac-${key}`, dataset: { state: key } },
        h('h3', {}, title, ' ', h('span', { class: 'count' }, String(all.length))),
        shown.length ? h('ol', { class: 'ac-list' }, shown.map(caseItem)) : h('p', { class: 'muted small' }, '无')));
    }
    $('#ac-count').textContent = String(state.cases.filter((c) => c.state === 'opened' || c.state === 'explained').length);
  }

  /** While a reason is being typed a live reload waits: it would wipe the text. */
  function flush() {
    if (state.pending) { state.pending = false; load(); return; }
    render();
  }

  async function load() {
    if (state.editing) { state.pending = true; return; }
    try {
      const lists = await Promise.all(['open', 'upheld', 'dismissed'].map((s) => api(`/api/accountability?state=${s}&limit=1000`)));
      state.cases = lists.flat();
      if (state.editing) { state.pending = true; return; }
      render();
    } catch (err) { failed(box, err); }
  }
  return { load, schedule: later(load, 400), state };
}

// --- scorecards ---------------------------------------------------------------------------------------------------

const SC_COLUMNS = [
  // [label, figure for the drill-down, value from figures, css]
  ['派单量', 'dispatched', (f) => String(f.dispatched)],
  ['响应率', 'response_rate', (f) => pct(f.response_rate)],
  ['解决率', 'resolution_rate', (f) => pct(f.resolution_rate)],
  ['满意率', 'satisfaction_rate', (f) => pct(f.satisfaction_rate)],
  ['按时办结率', 'on_time_rate', (f) => pct(f.on_time_rate)],
  ['超期件数', 'overdue', (f) => String(f.overdue)],
  ['退单次数', 'send_backs', (f) => String(f.send_backs)],
  ['平均办理时长', 'handling_time', (f) => hours(f.handling_hours_avg)],
  ['P90办理时长', 'handling_time', (f) => hours(f.handling_hours_p90)],
];
const WEIGHT_LABELS = { response: '响应率', on_time: '按时办结率', resolution: '解决率', satisfaction: '满意率' };

function iso(d) { return `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, '0')}-${String(d.getDate()).padStart(2, '0')}`; }

/** Period presets relative to ``today`` (the server's date in city time, 'YYYY-MM-DD'). */
function presetRange(preset, today) {
  const [y, m, d] = today.split('-').map(Number);
  const t = new Date(y, m - 1, d);
  if (preset === 'last-month') return [iso(new Date(y, m - 2, 1)), iso(new Date(y, m - 1, 0))];
  if (preset === 'quarter') return [iso(new Date(y, Math.floor((m - 1) / 3) * 3, 1)), iso(t)];
  if (preset === 'year') return [iso(new Date(y, 0, 1)), iso(t)];
  return [iso(new Date(y, m - 1, 1)), iso(t)];
}

export function scorecardsPanel({ openDetail }) {
  const body = $('#sc-body');
  const state = { data: null, today: null, drill: null };
  const weightInputs = { response: $('#sc-w-response'), on_time: $('#sc-w-on_time'), resolution: $('#sc-w-resolution'),
    satisfaction: $('#sc-w-satisfaction') };

  function params() {
    const p = new URLSearchParams();
    if ($('#sc-from').value) p.set('from', $('#sc-from').value);
    if ($('#sc-to').value) p.set('to', $('#sc-to').value);
    for (const [k, input] of Object.entries(weightInputs)) p.set(`w_${k}`, input.value === '' ? '0' : input.value);
    return p;
  }

  function weightsValid() {
    const values = Object.values(weightInputs).map((i) => Number(i.value || 0));
    const ok = values.every((v) => Number.isFinite(v) && v >= 0 && v <= 100) && values.some((v) => v > 0);
    $('#sc-weight-error').hidden = ok;
    return ok;
  }

  function render() {
    const data = state.data;
    clear(body);
    $('#sc-period').textContent = `${data.period_from} 至 ${data.period_to}`;
    if (!data.units.length) {
      body.appendChild(h('tr', {}, h('td', { colspan: String(SC_COLUMNS.length + 3), class: 'muted' }, '考核期内没有派单')));
      return;
    }
    for (const u of data.units) {
      const f = u.figures;
      const used = Object.entries(f.weights_used || {}).map(([k, w]) => `${WEIGHT_LABELS[k] || k} ${(w * 100).toFixed(0)}%`).join('，');
      body.appendChild(h('tr', { dataset: { unit: u.unit_id } },
        h('td', { class: 'num rank' }, String(u.rank)),
        h('td', { class: 'unit' }, u.unit_name),
        SC_COLUMNS.map(([label, figure, value]) => h('td', { class: 'num' },
          h('button', { type: 'button', class: 'link fig', dataset: { figure }, title: `查看「${label}」对应的工单`,
            onclick: () => drill(u, figure, label) }, value(f)))),
        // No on-time outcome yet: no score ("暂无数据"), never a 100 earned by doing nothing. The score drills down
        // to what each ticket added to it.
        h('td', { class: 'num score', title: used ? `实际权重：${used}` : '暂无按时办结数据，不计综合得分' },
          f.score === null ? h('span', { class: 'muted' }, '暂无数据')
            : h('button', { type: 'button', class: 'link fig', dataset: { figure: 'score' }, title: '查看每件工单的得分',
              onclick: () => drill(u, 'score', '综合得分') }, f.score.toFixed(2)))));
    }
  }

  async function load() {
    const first = !state.today;
    if (!first && !weightsValid()) return;
    try {
      // First load without parameters: the server's defaults (this month in city time, the city's weights) fill
      // the pickers; from then on the pickers are what is asked for, in the table and in the export.
      const data = await api(first ? '/api/scorecards' : `/api/scorecards?${params()}`);
      state.data = data;
      if (first) {
        state.today = data.period_to;
        $('#sc-from').value = data.period_from;
        $('#sc-to').value = data.period_to;
        const total = Object.values(data.weights).reduce((a, b) => a + b, 0);
        for (const [k, input] of Object.entries(weightInputs)) {
          if (total > 0 && k in data.weights) input.value = String(Math.round((data.weights[k] / total) * 1000) / 10);
        }
      }
      render();
      if (state.drill) drill(...state.drill, { keep: true });
    } catch (err) { failed(body, err); }
  }

  async function drill(unit, figure, label, { keep = false } = {}) {
    state.drill = [unit, figure, label];
    const p = params();
    p.set('figure', figure);
    const section = $('#sc-drill');
    try {
      const data = await api(`/api/scorecards/${unit.unit_id}/tickets?${p}`);
      section.hidden = false;
      const what = label === data.label ? label : `${label}（按${data.label}明细）`;
      $('#sc-drill-title').textContent = `${unit.unit_name} · ${what} · ${data.period_from} 至 ${data.period_to} · 共 ${data.tickets.length} 件`;
      const filter = clear($('#sc-drill-filter'));
      const outcomes = Object.keys(labels().outcome).filter((o) => data.counts[o]);
      const rows = clear($('#sc-drill-body'));
      const show = (outcome) => {
        for (const b of filter.querySelectorAll('button')) b.setAttribute('aria-pressed', String(b.dataset.outcome === outcome));
        for (const tr of rows.querySelectorAll('tr[data-outcome]')) tr.hidden = outcome !== 'all' && tr.dataset.outcome !== outcome;
      };
      filter.appendChild(h('button', { type: 'button', class: 'small', dataset: { outcome: 'all' }, onclick: () => show('all') }, '全部'));
      for (const o of outcomes) {
        filter.appendChild(h('button', { type: 'button', class: 'small', dataset: { outcome: o }, onclick: () => show(o) },
          `${labelOf('outcome', o)} ${data.counts[o]}`));
      }
      if (!data.tickets.length) rows.appendChild(h('tr', {}, h('td', { colspan: '5', class: 'muted' }, '没有对应的工单')));
      for (const t of data.tickets) {
        rows.appendChild(h('tr', { class: 'clickable', dataset: { id: t.ticket_id, outcome: t.outcome }, onclick: () => openDetail(t.ticket_id) },
          h('td', {}, ticketButton(t.number, t.ticket_id, openDetail)), h('td', {}, t.title),
          h('td', {}, badge(labelOf('outcome', t.outcome), `oc-${t.outcome}`)),
          h('td', {}, figureValue(figure, t.value)), h('td', {}, fmtTime(t.dispatched_at))));
      }
      show('all');
      if (!keep) section.scrollIntoView({ behavior: 'smooth', block: 'nearest' });
    } catch (err) { toast(`加载工单失败：${err.message}`, 'error'); }
  }

  async function exportXlsx() {
    if (!weightsValid()) return;
    const button = $('#sc-export');
    button.disabled = true;
    try {
      // A plain link cannot carry the bearer token: fetch the file, then hand it to the browser as a blob URL.
      const response = await fetch(`/api/scorecards.xlsx?${params()}`, { headers: { Authorization: `Bearer ${token()}` } });
      if (!response.ok) {
        const detail = await response.json().then((d) => d.detail).catch(() => null);
        throw new Error(detail || `HTTP ${response.status}`);
      }
      const blob = await response.blob();
      const match = /filename="?([^";]+)"?/.exec(response.headers.get('Content-Disposition') || '');
      const name = match ? match[1] : `scorecards_${$('#sc-from').value}_${$('#sc-to').value}.xlsx`;
      const url = URL.createObjectURL(blob);
      const a = h('a', { href: url, download: name, hidden: true });
      document.body.appendChild(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(url), 60_000);
      toast(`已导出 ${name}`, 'ok');
    } catch (err) {
      toast(`导出失败：${err.message}`, 'error');
    } finally {
      button.disabled = false;
    }
  }

  const reload = debounce(() => load(), 400);
  $('#sc-preset').addEventListener('change', () => {
    const preset = $('#sc-preset').value;
    if (preset !== 'custom' && state.today) [$('#sc-from').value, $('#sc-to').value] = presetRange(preset, state.today);
    load();
  });
  for (const id of ['#sc-from', '#sc-to']) {
    $(id).addEventListener('change', () => { $('#sc-preset').value = 'custom'; load(); });
  }
  for (const input of Object.values(weightInputs)) input.addEventListener('input', reload);
  $('#sc-export').addEventListener('click', exportXlsx);
  $('#sc-drill-close').addEventListener('click', () => { $('#sc-drill').hidden = true; state.drill = null; });
  return { load, schedule: later(load, 10_000), drill, state };
}

function figureValue(figure, value) {
  if (value === null || value === undefined) return '—';
  if (figure === 'handling_time') return `${Number(value).toFixed(1)} 工作小时`;
  if (figure === 'satisfaction_rate') return labelOf('satisfaction', value);
  if (figure === 'send_backs' || figure === 'send_backs_refused') return `${value} 次`;
  if (figure === 'dispatched') return fmtTime(value);
  if (figure === 'score') {
    if (value.earned === null) return '—';
    const lost = Object.entries(value.rates).filter(([, p]) => p.earned < p.possible)
      .map(([k, p]) => `${WEIGHT_LABELS[k] || k} −${(p.possible - p.earned).toFixed(2)}`);
    return `得 ${value.earned.toFixed(2)} / ${value.possible.toFixed(2)} 分${lost.length ? `（${lost.join('，')}）` : ''}`;
  }
  return String(value);
}
