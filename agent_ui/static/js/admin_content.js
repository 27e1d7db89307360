// Admin desk, knowledge and calendar. Knowledge: the articles searched the way the agent's form searches them, an
// editor with a preview drawn as the agent's ticket panel shows an article. Calendar: a month view of the days as
// deadlines count them (State Council schedule + the city's overrides), the overrides, office hours; deadline
// policies per kind × urgency with per-category overrides, and the preview of the deadline a ticket received now
// (or at a chosen moment) would get.
import { api } from './api.js';
import { config, labelOf } from './config.js';
import { h, clear, $, badge } from './dom.js';
import { articleView } from './ticket.js';
import { debounce } from './schedule.js';
import { fmtTime } from './time.js';

export function knowledgeTab(ctx) {
  const list = $('#k-list');
  const form = $('#k-form');
  let editing = null;

  function keywords() { return form.keywords.value.split(/[、,，;；\s]+/).map((k) => k.trim()).filter(Boolean); }

  /** The article as the form describes it, in the shape the API answers. Its validity is judged here on the
   * browser's date for the preview of unsaved edits; once saved, the server's (the city's date) is shown. */
  function draft() {
    const today = new Date().toLocaleDateString('sv-SE'); // YYYY-MM-DD, local
    const from = form.valid_from.value || null;
    const to = form.valid_to.value || null;
    const owner = form.owner_unit_id.value ? Number(form.owner_unit_id.value) : null;
    return { title: form.title.value.trim() || '（标题）', body: form.body.value.trim() || '（正文）',
      valid_from: from, valid_to: to, owner_unit_id: owner, owner_unit_name: owner ? ctx.unitName(owner) : null,
      validity: from && today < from ? 'pending' : (to && today > to ? 'expired' : 'current') };
  }

  function preview() {
    const box = $('#k-preview');
    const category = form.category_id.value ? ctx.categoryPath(Number(form.category_id.value)) : '';
    // the agent's analysis panel (the same drawing code), then the keywords the search weighs
    box.replaceChildren(h('div', { class: 'analysis' }, h('ul', { class: 'kb' }, h('li', {}, ...articleView(draft(), { quote: () => {} }))),
      category ? h('div', { class: 'muted small' }, `分类：${category}`) : null,
      h('div', {}, keywords().map((k) => h('span', { class: 'badge' }, k)))));
  }

  function open(article) {
    editing = article;
    $('#k-form-title').textContent = article ? `修改知识 #${article.id}` : '新建知识';
    form.title.value = article ? article.title : '';
    form.body.value = article ? article.body : '';
    form.category_id.value = article && article.category_id ? String(article.category_id) : '';
    form.keywords.value = article ? article.keywords.join('、') : '';
    form.owner_unit_id.value = article && article.owner_unit_id ? String(article.owner_unit_id) : '';
    form.valid_from.value = (article && article.valid_from) || '';
    form.valid_to.value = (article && article.valid_to) || '';
    $('#k-retire').hidden = !article;
    preview();
  }

  async function load() {
    ctx.options($('#k-category'), ctx.categoryOptions(), true);
    ctx.options($('#k-owner'), ctx.unitOptions(), true);
    const q = $('#k-q').value.trim();
    const articles = await api(`/api/knowledge?limit=100${q ? `&q=${encodeURIComponent(q)}` : ''}`);
    clear(list);
    if (!articles.length) list.appendChild(h('li', { class: 'muted' }, q ? '没有找到相关知识' : '知识库还是空的'));
    for (const a of articles) {
      list.appendChild(h('li', { dataset: { id: a.id, validity: a.validity } }, h('button', { type: 'button', class: 'item', onclick: () => open(a) },
        h('strong', {}, a.title), a.validity !== 'current' ? badge(labelOf('knowledge_validity', a.validity), 'warn') : null, a.score !== null && a.score !== undefined ? h('span', { class: 'muted small' }, ` 相关度 ${a.score.toFixed(2)}`) : null,
        h('div', { class: 'muted small' }, `${a.category_id ? ctx.categoryPath(a.category_id) : '不限分类'} · 更新于 ${fmtTime(a.updated_at, true)}`))));
    }
    if (!editing) open(null);
  }

  form.addEventListener('input', preview);
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const { valid_from, valid_to, owner_unit_id } = draft();
    const body = { title: form.title.value.trim(), body: form.body.value.trim(), keywords: keywords(),
      category_id: form.category_id.value ? Number(form.category_id.value) : null, valid_from, valid_to, owner_unit_id };
    const saved = await ctx.change(editing
      ? api(`/api/knowledge/${editing.id}`, { method: 'PUT', body })
      : api('/api/knowledge', { method: 'POST', body }), '知识已保存');
    if (saved) { editing = saved; open(saved); load(); }
  });
  $('#k-retire').addEventListener('click', async () => {
    if (!editing || !confirm(`停用「${editing.title}」？话务员将不再看到它。`)) return;
    if (await ctx.change(api(`/api/knowledge/${editing.id}`, { method: 'DELETE' }), '已停用')) { open(null); load(); }
  });
  $('#k-new').addEventListener('click', () => open(null));
  $('#k-q').addEventListener('input', debounce(load, 250));
  return { load };
}

const SOURCES = { default: '按诉求类型的时限', urgent: '紧急件时限', category: '分类专门时限' };
const WEEKDAYS = ['一', '二', '三', '四', '五', '六', '日'];

function minutesText(days, minutes, clock) {
  const parts = [];
  if (days) parts.push(`${days}${clock ? '天' : '个工作日'}`);
  if (minutes) parts.push(minutes % 60 ? `${minutes}分钟` : `${minutes / 60}小时`);
  return parts.join('') || '—';
}

export function calendarTab(ctx) {
  const now = new Date();
  let year = now.getFullYear();
  let month = now.getMonth() + 1;
  const kinds = Object.entries(config().labels.kind);
  ctx.options($('#pf-kind'), kinds, true);
  ctx.options($('#pv-kind'), kinds);
  $('#pv-kind').value = 'help';

  // office hours: rows of two times; saved whole (the server orders them and refuses overlaps in Chinese)
  const hoursText = (periods) => periods.map(([a, b]) => `${a}–${b}`).join('、');
  function periodRow([opens, closes] = ['', '']) {
    const li = h('li', { class: 'oh-period' },
      h('label', {}, '上班 ', h('input', { type: 'time', name: 'opens', value: opens, required: true })),
      h('label', {}, ' 下班 ', h('input', { type: 'time', name: 'closes', value: closes, required: true })),
      h('button', { type: 'button', class: 'small', onclick: () => li.remove() }, '删除'));
    return li;
  }
  function showHours(out) {
    $('#c-hours').textContent = hoursText(out.periods);
    $('#oh-source').textContent = out.source === 'admin' ? `（本市设置；默认 ${hoursText(out.default)}）` : '（系统默认设置）';
    $('#oh-reset').hidden = out.source !== 'admin';
    $('#oh-periods').replaceChildren(...out.periods.map(periodRow));
  }
  async function loadHours() { showHours(await api('/api/calendar/office-hours')); }
  $('#oh-add').addEventListener('click', () => $('#oh-periods').appendChild(periodRow()));
  $('#oh-form').addEventListener('submit', async (e) => {
    e.preventDefault();
    const periods = [...document.querySelectorAll('#oh-periods .oh-period')].map((li) => ({
      opens: li.querySelector('[name=opens]').value, closes: li.querySelector('[name=closes]').value }));
    const out = await ctx.change(api('/api/calendar/office-hours', { method: 'PUT', body: { periods } }), '办公时间已保存，新的时限按此计算');
    if (out) { showHours(out); runPreview(); }
  });
  $('#oh-reset').addEventListener('click', async () => {
    const out = await ctx.change(api('/api/calendar/office-hours', { method: 'DELETE' }), '办公时间已恢复默认');
    if (out) { showHours(out); runPreview(); }
  });

  async function loadMonth() {
    const [m, cal] = await Promise.all([api(`/api/calendar/month?year=${year}&month=${month}`), api(`/api/calendar?year=${year}`)]);
    $('#c-month').textContent = `${year}年${month}月`;
    $('#c-warnings').textContent = [...cal.warnings, m.known ? '' : `${year}年的节假日安排未知：只按周末计算`].filter(Boolean).join('；');
    const grid = $('#c-grid');
    clear(grid);
    for (const w of WEEKDAYS) grid.appendChild(h('div', { class: 'cal-head' }, w));
    const offset = (new Date(year, month - 1, 1).getDay() + 6) % 7;
    for (let i = 0; i < offset; i += 1) grid.appendChild(h('div', { class: 'cal-pad' }));
    for (const d of m.days) {
      // a statutory holiday's name on its days off, "…调休" on the weekend worked in its place
      const holiday = d.holiday ? (d.working ? `${d.holiday}调休` : d.holiday) : '';
      grid.appendChild(h('button', { type: 'button', class: `cal-day ${d.working ? 'work' : 'off'}${d.overridden ? ' ov' : ''}`,
        dataset: { day: d.day, working: String(d.working) }, title: [d.working ? '工作日' : '休息日', holiday].filter(Boolean).join(' · '),
        onclick: () => { $('#co-day').value = d.day; $('#co-working').value = String(!d.working); } },
      String(Number(d.day.slice(8))), h('span', { class: 'small' }, d.working ? '班' : '休'),
      holiday ? h('span', { class: 'small holiday', dataset: { role: 'holiday' } }, holiday) : null));
    }
    const list = $('#c-overrides');
    clear(list);
    if (!cal.overrides.length) list.appendChild(h('li', { class: 'muted small' }, `${year}年没有本市调整`));
    for (const o of cal.overrides) {
      list.appendChild(h('li', { dataset: { day: o.day } }, `${o.day} ${o.working ? '工作日（调休上班）' : '休息日'} ${o.note}`,
        h('button', { type: 'button', class: 'small', onclick: async () => {
          if (await ctx.change(api(`/api/calendar/overrides/${o.day}`, { method: 'DELETE' }), `已删除 ${o.day} 的调整`)) { loadMonth(); runPreview(); }
        } }, '删除')));
    }
  }

  async function loadPolicies() {
    const out = await api('/api/deadline-policies');
    const byKey = new Map(out.rows.map((r) => [r.scope_key, r]));
    const body = $('#p-table tbody');
    clear(body);
    for (const [key, p] of Object.entries(out.effective)) {
      const scope = key.startsWith('category_code:') ? `分类 ${key.slice(14)}` : (key.startsWith('urgent') ? p.label : `${p.label}（非紧急）`);
      const rowKey = key.startsWith('category_code:') ? null : key;
      const own = rowKey ? byKey.get(rowKey) : out.rows.find((r) => r.category_id && ctx.categories.find((c) => c.id === r.category_id && c.code === key.slice(14)));
      body.appendChild(h('tr', { dataset: { scope: key } },
        h('td', {}, scope, own ? h('span', { class: 'badge' }, '本市设置') : h('span', { class: 'muted small' }, ' 默认')),
        h('td', {}, minutesText(p.sign_days, p.sign_minutes, p.clock_time)),
        h('td', {}, minutesText(p.reply_days, p.reply_minutes, p.clock_time)),
        h('td', {}, p.clock_time ? '自然时间' : '工作时间'),
        h('td', {}, own ? h('button', { type: 'button', class: 'small', onclick: async () => {
          if (await ctx.change(api(`/api/deadline-policies/${own.id}`, { method: 'DELETE' }), '已恢复默认时限')) { loadPolicies(); runPreview(); }
        } }, '恢复默认') : null)));
    }
  }

  async function runPreview() {
    const params = new URLSearchParams({ kind: $('#pv-kind').value, urgent: String($('#pv-urgent').checked) });
    if ($('#pv-category').value) params.set('category_id', $('#pv-category').value);
    const start = $('#pv-start').value;
    if (start) params.set('start', new Date(start).toISOString());
    const box = $('#pv-result');
    try {
      const p = await api(`/api/deadline-policies/preview?${params}`);
      box.replaceChildren(h('dl', { class: 'preview' },
        h('dt', {}, '受理时间'), h('dd', {}, fmtTime(p.start, true)),
        h('dt', {}, '签收时限'), h('dd', { dataset: { role: 'sign-due' } }, fmtTime(p.sign_due, true)),
        h('dt', {}, '办结时限'), h('dd', { dataset: { role: 'reply-due', value: p.reply_due } }, fmtTime(p.reply_due, true)),
        h('dt', {}, '依据'), h('dd', { dataset: { role: 'source' } }, `${SOURCES[p.source] || p.source}${p.category ? ` · 分类 ${p.category}` : ''}`),
        p.warnings.length ? h('dd', { class: 'error small' }, p.warnings.join('；')) : null));
    } catch (err) { box.replaceChildren(h('p', { class: 'error' }, err.message)); }
  }

  $('#c-prev').addEventListener('click', () => { month -= 1; if (month < 1) { month = 12; year -= 1; } loadMonth(); });
  $('#c-next').addEventListener('click', () => { month += 1; if (month > 12) { month = 1; year += 1; } loadMonth(); });
  $('#c-override').addEventListener('submit', async (e) => {
    e.preventDefault();
    const day = $('#co-day').value;
    const body = { working: $('#co-working').value === 'true', note: $('#co-note').value.trim() };
    if (await ctx.change(api(`/api/calendar/overrides/${day}`, { method: 'PUT', body }), `${day} 已设为${body.working ? '工作日' : '休息日'}`)) {
      [year, month] = [Number(day.slice(0, 4)), Number(day.slice(5, 7))];
      await loadMonth();
      await runPreview();
    }
  });
  $('#p-form').addEventListener('submit', async (e) => {
    e.preventDefault();
    const scope = $('#pf-scope').value;
    const body = { scope, clock_time: $('#pf-clock').checked,
      sign_days: Number($('#pf-sign-days').value), sign_minutes: Number($('#pf-sign-min').value),
      reply_days: Number($('#pf-reply-days').value), reply_minutes: Number($('#pf-reply-min').value) };
    if (scope !== 'category' && $('#pf-kind').value) body.kind = $('#pf-kind').value;
    if (scope === 'category') body.category_id = Number($('#pf-category').value);
    if (await ctx.change(api('/api/deadline-policies', { method: 'PUT', body }), '时限已保存，新派的工单按此计算')) { loadPolicies(); runPreview(); }
  });
  $('#pv-form').addEventListener('submit', (e) => { e.preventDefault(); runPreview(); });

  async function load() {
    ctx.options($('#pf-category'), ctx.categoryOptions());
    ctx.options($('#pv-category'), ctx.categoryOptions(), true);
    await Promise.all([loadMonth(), loadHours(), loadPolicies(), runPreview()]);
  }
  return { load };
}
