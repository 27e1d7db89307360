// Admin desk, directory and dispatch catalogue: the routing tester (the real catalogue for a category × area, or
// the city's analysis of a typed request), the catalogue as a searchable table with its rules edited in a dialog,
// the unit table and the area tree with aliases, and the Excel import with a preview of every change (or every
// error with its sheet and row) before anything is written, plus the export.
import { api, token } from './api.js';
import { h, clear, $, toast } from './dom.js';
import { debounce } from './schedule.js';

const KIND_LABELS = { areas: '地区', units: '单位', rules: '派单目录' };
const CHANGE_LABELS = { added: '新增', changed: '修改', removed: '停用' };
const UNIT_KINDS = { government: '政府', bureau: '部门', street_office: '街道', community: '社区', enterprise: '企业', hotline: '热线' };
const XLSX = 'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet';

/** POST a file as the raw request body (the import endpoints take the workbook itself). */
async function upload(path, file) {
  const response = await fetch(path, { method: 'POST', body: file,
    headers: { 'Content-Type': XLSX, Accept: 'application/json', Authorization: `Bearer ${token()}` } });
  const data = await response.json().catch(() => null);
  return { ok: response.ok, status: response.status, data };
}

export function directoryTab(ctx) {
  let rules = [];
  let conflicts = [];

  // --- the tester ---
  const result = $('#t-result');
  function showRoute(out) {
    const co = out.co_units.map((u) => u.name).join('、');
    result.replaceChildren(h('div', { class: 'route-result', dataset: { rule: out.rule_id || '' } },
      h('p', {}, h('strong', { dataset: { role: 'unit' } }, out.unit ? out.unit.name : '（目录中没有对应单位，需人工派单）'),
        co ? ` 协办：${co}` : ''),
      h('p', { class: 'small', dataset: { role: 'rule' } },
        out.rule_id ? `依据派单规则 #${out.rule_id}：` : '', out.explanation),
      out.conflicting_rule_ids.length ? h('p', { class: 'error small' }, `有冲突的规则：#${out.conflicting_rule_ids.join('、#')}`) : null));
  }
  $('#t-route').addEventListener('submit', async (e) => {
    e.preventDefault();
    const params = new URLSearchParams({ category_id: $('#t-category').value });
    if ($('#t-area').value) params.set('area_id', $('#t-area').value);
    try { showRoute(await api(`/api/route?${params}`)); } catch (err) { result.replaceChildren(h('p', { class: 'error' }, err.message)); }
  });
  $('#t-suggest').addEventListener('submit', async (e) => {
    e.preventDefault();
    const text = $('#t-text').value.trim();
    if (!text) return;
    try {
      const s = await api('/api/route/suggest', { method: 'POST', body: { text } });
      const top = s.categories[0];
      result.replaceChildren(h('div', { class: 'route-result', dataset: { rule: s.route_rule_id || '' } },
        h('p', {}, '分类：', top ? `${top.label}（${(top.probability * 100).toFixed(1)}%）` : '（未能判断，需人工分类）',
          '；地点：', s.area_name || '（未识别）'),
        h('p', {}, h('strong', { dataset: { role: 'unit' } }, s.unit_name || '（没有对应单位，需人工派单）')),
        h('p', { class: 'small', dataset: { role: 'rule' } }, s.route_rule_id ? `依据派单规则 #${s.route_rule_id}：` : '', s.route_explanation)));
    } catch (err) { result.replaceChildren(h('p', { class: 'error' }, err.message)); }
  });

  // --- the catalogue ---
  const ruleBody = $('#r-table tbody');
  function ruleText(r) {
    return [r.category_code, r.category_name, ctx.categoryPath(r.category_id), r.area_name, r.area_code, r.lead_unit_name,
      ...r.co_unit_ids.map((id) => ctx.unitName(id)), r.note].join(' ');
  }
  function renderRules() {
    const q = $('#r-q').value.trim();
    const shown = q ? rules.filter((r) => ruleText(r).includes(q)) : rules;
    $('#r-count').textContent = shown.length;
    const conflictText = conflicts.map((c) => `#${c.join('、#')}`).join('；');
    $('#r-conflicts').hidden = !conflicts.length;
    $('#r-conflicts').textContent = `以下规则互相冲突（同一分类×地区有多个主办单位）：${conflictText}`;
    clear(ruleBody);
    for (const r of shown) {
      ruleBody.appendChild(h('tr', { dataset: { id: r.id } },
        h('td', {}, String(r.id)), h('td', {}, ctx.categoryPath(r.category_id)), h('td', {}, r.area_name || '—'),
        h('td', { dataset: { role: 'lead' } }, r.lead_unit_name || '—'),
        h('td', {}, r.co_unit_ids.map((id) => ctx.unitName(id)).join('、') || '—'), h('td', { class: 'small' }, r.note),
        h('td', { class: 'buttons' },
          h('button', { type: 'button', class: 'small', dataset: { role: 'edit' }, onclick: () => editRule(r) }, '修改'),
          h('button', { type: 'button', class: 'small', onclick: async () => {
            if (!confirm(`停用派单规则 #${r.id}？`)) return;
            if (await ctx.change(api(`/api/catalogue/${r.id}`, { method: 'DELETE' }), `规则 #${r.id} 已停用`)) loadRules();
          } }, '停用'))));
    }
  }
  async function loadRules() {
    const out = await api('/api/catalogue');
    rules = out.rules;
    conflicts = out.conflicts;
    renderRules();
  }
  $('#r-q').addEventListener('input', debounce(renderRules, 150));

  const dialog = $('#r-edit');
  let editing = null;
  function editRule(r) {
    editing = r;
    $('#re-title').textContent = r ? `修改派单规则 #${r.id}` : '新增派单规则';
    ctx.options($('#re-category'), ctx.categoryOptions());
    ctx.options($('#re-area'), ctx.areaOptions());
    ctx.options($('#re-lead'), ctx.unitOptions());
    const co = $('#re-co');
    clear(co);
    for (const u of ctx.units.filter((x) => x.active)) {
      co.appendChild(h('label', {}, h('input', { type: 'checkbox', name: 'co_unit_ids', value: u.id,
        checked: r ? r.co_unit_ids.includes(u.id) : false }), u.short_name || u.name));
    }
    if (r) {
      $('#re-category').value = String(r.category_id);
      $('#re-area').value = String(r.area_id);
      $('#re-lead').value = String(r.lead_unit_id);
    }
    $('#re-note').value = r ? r.note : '';
    dialog.showModal();
  }
  $('#r-new-open').addEventListener('click', () => editRule(null));
  $('#re-cancel').addEventListener('click', () => dialog.close());
  $('#r-edit-form').addEventListener('submit', async (e) => {
    e.preventDefault();
    const body = {
      category_id: Number($('#re-category').value), area_id: Number($('#re-area').value),
      lead_unit_id: Number($('#re-lead').value), note: $('#re-note').value.trim(),
      co_unit_ids: [...dialog.querySelectorAll('input[name=co_unit_ids]:checked')].map((i) => Number(i.value)),
    };
    const saved = await ctx.change(editing
      ? api(`/api/catalogue/${editing.id}`, { method: 'PUT', body })
      : api('/api/catalogue', { method: 'POST', body }), '派单规则已保存，所有受理台立即生效');
    if (saved) { dialog.close(); loadRules(); }
  });

  // --- units and areas ---
  function renderUnits() {
    const q = $('#d-unit-q').value.trim();
    const shown = ctx.units.filter((u) => !q || `${u.code} ${u.name} ${u.short_name || ''}`.includes(q));
    $('#d-unit-count').textContent = shown.length;
    const body = $('#d-units tbody');
    clear(body);
    for (const u of shown) {
      body.appendChild(h('tr', { dataset: { code: u.code }, class: u.active ? '' : 'inactive' },
        h('td', { class: 'number' }, u.code), h('td', {}, u.name), h('td', {}, UNIT_KINDS[u.kind] || u.kind),
        h('td', {}, u.area_id ? ctx.areaName(u.area_id) : '—'), h('td', {}, u.parent_id ? ctx.unitName(u.parent_id) : '—'),
        h('td', {}, u.phone || '—'), h('td', {}, u.active ? '启用' : '停用')));
    }
  }
  function renderAreas() {
    const q = $('#d-area-q').value.trim();
    const depth = { city: 0, district: 1, street: 2, community: 3 };
    const list = $('#d-areas');
    clear(list);
    let n = 0;
    for (const a of orderAreas(ctx.areas)) {
      if (q && !`${a.code} ${a.name} ${a.aliases.join(' ')}`.includes(q)) continue;
      n += 1;
      list.appendChild(h('li', { style: { paddingLeft: `${(depth[a.level] || 0) * 1.2}rem` }, class: a.active ? '' : 'inactive', dataset: { code: a.code } },
        h('span', {}, a.name), ' ', h('span', { class: 'number' }, a.code),
        a.aliases.length ? h('span', { class: 'muted small' }, ` 别名：${a.aliases.join('、')}`) : null,
        a.active ? null : h('span', { class: 'muted small' }, '（停用）')));
    }
    $('#d-area-count').textContent = n;
  }
  $('#d-unit-q').addEventListener('input', debounce(renderUnits, 150));
  $('#d-area-q').addEventListener('input', debounce(renderAreas, 150));

  // --- import / export ---
  const importBox = $('#imp-result');
  let previewed = null;
  function showErrors(data) {
    const errors = (data && data.errors) || [];
    importBox.replaceChildren(h('div', { class: 'import-errors' },
      h('p', { class: 'error' }, (data && data.detail) || '导入失败'),
      errors.length ? h('table', { class: 'data' }, h('thead', {}, h('tr', {}, h('th', {}, '工作表'), h('th', {}, '行号'), h('th', {}, '问题'))),
        h('tbody', {}, errors.map((e) => h('tr', { dataset: { row: e.row } }, h('td', {}, e.sheet), h('td', { class: 'num' }, `第${e.row}行`), h('td', {}, e.message))))) : null));
  }
  function showChanges(out, applied) {
    const counts = out.changes.reduce((acc, c) => { acc[c.change] = (acc[c.change] || 0) + 1; return acc; }, {});
    const summary = Object.entries(CHANGE_LABELS).map(([k, label]) => `${label} ${counts[k] || 0} 行`).join('，');
    importBox.replaceChildren(h('div', { class: 'import-preview', dataset: { applied: applied ? 'yes' : 'no' } },
      h('p', {}, h('strong', {}, applied ? '已导入：' : '预览（尚未写入）：'), summary,
        out.changes.length ? '' : '。文件与现有目录一致，没有变化。'),
      out.changes.length ? h('table', { class: 'data' },
        h('thead', {}, h('tr', {}, h('th', {}, '变化'), h('th', {}, '表'), h('th', {}, '行号'), h('th', {}, '编码'), h('th', {}, '内容'))),
        h('tbody', {}, out.changes.map((c) => h('tr', { class: `change-${c.change}`, dataset: { change: c.change, key: c.key } },
          h('td', {}, CHANGE_LABELS[c.change]), h('td', {}, KIND_LABELS[c.kind]), h('td', { class: 'num' }, c.row ? `第${c.row}行` : '—'),
          h('td', { class: 'number' }, c.key), h('td', { class: 'small' }, describe(c)))))) : null));
  }
  $('#imp-preview').addEventListener('click', async () => {
    const file = $('#imp-file').files[0];
    $('#imp-apply').disabled = true;
    previewed = null;
    if (!file) { toast('请先选择Excel文件', 'error'); return; }
    const out = await upload('/api/directory/import.xlsx?dry_run=true', file);
    if (!out.ok) { showErrors(out.data); return; }
    previewed = file;
    showChanges(out.data, false);
    $('#imp-apply').disabled = !out.data.changes.length;
  });
  $('#imp-apply').addEventListener('click', async () => {
    if (!previewed) return;
    $('#imp-apply').disabled = true;
    const out = await upload('/api/directory/import.xlsx', previewed);
    previewed = null;
    if (!out.ok) { showErrors(out.data); return; }
    showChanges(out.data, true);
    toast('目录已导入，所有受理台立即生效', 'ok');
    await ctx.reload();
    await load();
  });
  $('#imp-file').addEventListener('change', () => { previewed = null; $('#imp-apply').disabled = true; importBox.replaceChildren(); });
  $('#exp-xlsx').addEventListener('click', async () => {
    const response = await fetch('/api/directory/export.xlsx', { headers: { Authorization: `Bearer ${token()}` } });
    if (!response.ok) { toast('导出失败', 'error'); return; }
    const url = URL.createObjectURL(await response.blob());
    const a = h('a', { href: url, download: 'directory.xlsx' });
    document.body.appendChild(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10_000);
  });

  async function load() {
    ctx.options($('#t-category'), ctx.categoryOptions());
    ctx.options($('#t-area'), ctx.areaOptions(), true);
    renderUnits();
    renderAreas();
    await loadRules();
  }
  return { load };
}

function describe(change) {
  if (!change.before) return Object.entries(change.after).filter(([, v]) => v !== '' && v !== null).map(([k, v]) => `${k}：${v}`).join('，');
  return Object.keys(change.after).filter((k) => change.before[k] !== change.after[k])
    .map((k) => `${k}：${change.before[k] || '（空）'} → ${change.after[k] || '（空）'}`).join('，');
}

/** Areas parent before children, siblings by code. */
export function orderAreas(areas) {
  const children = new Map();
  for (const a of areas) {
    const key = a.parent_id || 0;
    if (!children.has(key)) children.set(key, []);
    children.get(key).push(a);
  }
  const out = [];
  const walk = (pid) => { for (const a of (children.get(pid) || []).sort((x, y) => x.code.localeCompare(y.code))) { out.push(a); walk(a.id); } };
  walk(0);
  return out;
}
