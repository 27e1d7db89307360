// Admin desk, accounts: search and filter, create, a unit's handler account in one click, change name / role /
// unit, disable and enable, reset a password (the generated one is shown once), last activity.
import { api } from './api.js';
import { config, labelOf } from './config.js';
import { h, clear, $ } from './dom.js';
import { debounce } from './schedule.js';
import { fmtTime } from './time.js';

export function usersTab(ctx) {
  const body = $('#u-table tbody');
  const roles = Object.entries(config().labels.role);
  ctx.options($('#u-role'), roles, true);
  ctx.options($('#un-role'), roles);
  ctx.options($('#ue-role'), roles);
  let users = [];

  function showSecret(user, password) {
    const box = $('#u-secret');
    box.replaceChildren(
      h('strong', {}, `账号 ${user.username} 的密码：`), h('code', { id: 'u-secret-password' }, password),
      h('span', { class: 'muted small' }, '（只显示这一次，请当面或通过安全方式交给本人，并提醒其登录后修改）'),
      h('button', { type: 'button', class: 'small', onclick: () => { box.hidden = true; } }, '关闭'));
    box.hidden = false;
  }

  function row(u) {
    const toggle = h('button', { type: 'button', class: 'small', dataset: { role: 'toggle' }, onclick: async () => {
      const verb = u.active ? '停用' : '启用';
      if (u.active && !confirm(`确定停用账号 ${u.username}？停用后立即无法登录。`)) return;
      if (await ctx.change(api(`/api/users/${u.id}`, { method: 'PATCH', body: { active: !u.active } }), `已${verb} ${u.username}`)) load();
    } }, u.active ? '停用' : '启用');
    return h('tr', { dataset: { id: u.id, username: u.username }, class: u.active ? '' : 'inactive' },
      h('td', { class: 'number' }, u.username), h('td', {}, u.display_name), h('td', {}, labelOf('role', u.role)),
      h('td', {}, u.unit_id ? ctx.unitName(u.unit_id) : '—'),
      h('td', {}, u.active ? '正常' : '已停用'),
      h('td', { class: 'small' }, u.last_active_at ? fmtTime(u.last_active_at, true) : '从未登录'),
      h('td', { class: 'buttons' },
        h('button', { type: 'button', class: 'small', dataset: { role: 'edit' }, onclick: () => edit(u) }, '修改'),
        h('button', { type: 'button', class: 'small', dataset: { role: 'password' }, disabled: !u.active, onclick: async () => {
          if (!confirm(`为 ${u.username} 生成新密码？旧密码将失效。`)) return;
          const out = await ctx.change(api(`/api/users/${u.id}/password`, { method: 'POST', body: {} }), '密码已重置');
          if (out) showSecret(out.user, out.password);
        } }, '重置密码'),
        toggle));
  }

  function render() {
    clear(body);
    $('#u-count').textContent = users.length;
    if (!users.length) body.appendChild(h('tr', {}, h('td', { colspan: 7, class: 'muted' }, '没有符合条件的账号')));
    for (const u of users) body.appendChild(row(u));
  }

  async function load() {
    const params = new URLSearchParams();
    const q = $('#u-q').value.trim();
    if (q) params.set('q', q);
    if ($('#u-role').value) params.set('role', $('#u-role').value);
    if (!$('#u-inactive').checked) params.set('active', 'true');
    users = await api(`/api/users?${params}`);
    ctx.options($('#uh-unit'), ctx.unitOptions());
    ctx.options($('#un-unit'), ctx.unitOptions(), true);
    ctx.options($('#ue-unit'), ctx.unitOptions(), true);
    render();
  }

  const dialog = $('#u-edit');
  let editing = null;
  function edit(u) {
    editing = u;
    $('#ue-username').textContent = u.username;
    $('#ue-name').value = u.display_name;
    $('#ue-role').value = u.role;
    $('#ue-unit').value = u.unit_id ? String(u.unit_id) : '';
    $('#ue-device').value = u.phone_device || '';
    dialog.showModal();
  }
  $('#ue-cancel').addEventListener('click', () => dialog.close());
  $('#u-edit-form').addEventListener('submit', async (e) => {
    e.preventDefault();
    const role = $('#ue-role').value;
    const unit = $('#ue-unit').value;
    const patch = { display_name: $('#ue-name').value.trim(), role, unit_id: role === 'unit_handler' && unit ? Number(unit) : null,
      phone_device: $('#ue-device').value.trim() };
    if (await ctx.change(api(`/api/users/${editing.id}`, { method: 'PATCH', body: patch }), `已保存 ${editing.username}`)) {
      dialog.close();
      load();
    }
  });

  $('#u-handler').addEventListener('submit', async (e) => {
    e.preventDefault();
    const out = await ctx.change(api('/api/users/unit-handler', { method: 'POST', body: { unit_id: Number($('#uh-unit').value) } }),
      '承办账号已开设');
    if (out) { showSecret(out.user, out.password); load(); }
  });

  $('#u-new').addEventListener('submit', async (e) => {
    e.preventDefault();
    const form = e.target;
    const body = { username: form.username.value.trim(), display_name: form.display_name.value.trim(),
      password: form.password.value, role: form.role.value,
      unit_id: form.role.value === 'unit_handler' && form.unit_id.value ? Number(form.unit_id.value) : null };
    if (await ctx.change(api('/api/users', { method: 'POST', body }), `账号 ${body.username} 已新建`)) { form.reset(); load(); }
  });

  $('#u-q').addEventListener('input', debounce(load, 250));
  $('#u-role').addEventListener('change', load);
  $('#u-inactive').addEventListener('change', load);
  return { load };
}
