// One ticket on screen: its text, the front desk's analysis, its history, and a form for every action the server
// says this user may take now (``allowed_actions``). All citizen text goes in through textContent.
import { api, apiBlobUrl, ApiError } from './api.js';
import { action, labels, labelOf, statusBadge } from './config.js';
import { h, clear, badge, toast } from './dom.js';
import { fmtTime } from './time.js';

/**
 * The form of an action, from the server's action table: its label, access key, and fields (name, label, widget,
 * required, limits, options) in the order shown. None for actions no desk offers as a form.
 */
export function actionForm(name) {
  const a = action(name);
  return a && a.form ? { label: a.label, ...a.form } : null;
}

export function unitName(units, id) {
  const u = units.find((x) => x.id === id);
  return u ? (u.short_name || u.name) : `单位#${id}`;
}

function fieldInput(field, ctx, ticket, defaults, formId) {
  const id = `${formId}-${field.name}`;
  const value = defaults[field.name];
  let input;
  switch (field.widget) {
    case 'unit':
      input = h('select', { id, name: field.name, required: field.required },
        h('option', { value: '' }, '— 选择单位 —'),
        ctx.units.filter((u) => u.active).map((u) => h('option', { value: u.id, selected: value === u.id }, u.name)));
      break;
    case 'units':
      return h('fieldset', { class: 'field units' }, h('legend', {}, field.label),
        h('div', { class: 'checks' }, ctx.units.filter((u) => u.active).map((u) => h('label', {},
          h('input', { type: 'checkbox', name: field.name, value: u.id, checked: (value || []).includes(u.id) }),
          u.short_name || u.name))));
    case 'category':
      input = h('select', { id, name: field.name, required: field.required },
        h('option', { value: '' }, '— 选择分类 —'),
        ctx.categories.map((c) => h('option', { value: c.id, selected: value === c.id },
          `${'　'.repeat(c.level - 1)}${c.code} ${c.name}`)));
      break;
    case 'select':
      // Options the server reserves for some roles (the accountability decisions) are offered to those only.
      input = h('select', { id, name: field.name, required: field.required },
        field.options.filter((o) => !o.roles || o.roles.includes(ctx.me.role))
          .map((o) => h('option', { value: o.value, selected: value === o.value }, o.label)));
      break;
    case 'order': {
      // Only when the page says which orders are open (unit desk) and there is a choice to make; without the
      // field the server answers every open order of the unit.
      const orders = ctx.orders || [];
      if (orders.length < 2) return null;
      input = h('select', { id, name: field.name },
        h('option', { value: '' }, `全部 ${orders.length} 件督办`),
        orders.map((o) => h('option', { value: o.id }, `限 ${fmtTime(o.due_at)}：${o.note.slice(0, 40)}`)));
      break;
    }
    case 'case': {
      // The cases the decision can apply to (unit desk: the unit's opened cases). A unit must choose when there
      // are several; a supervisor may also open a new case, which takes none (readForm drops it then).
      const cases = ctx.cases || [];
      if (!cases.length) return null;
      input = h('select', { id, name: field.name, required: cases.length > 1 && ctx.me.role === 'unit_handler' },
        cases.length > 1 ? h('option', { value: '' }, '— 选择问责事项 —') : null,
        cases.map((c) => h('option', { value: c.id, selected: value === c.id }, `#${c.id} ${c.reason.slice(0, 40)}`)));
      break;
    }
    case 'approve':
      return h('fieldset', { class: 'field' }, h('legend', {}, field.label),
        h('label', { class: 'radio' }, h('input', { type: 'radio', name: field.name, value: 'true', required: true }), '同意'),
        h('label', { class: 'radio' }, h('input', { type: 'radio', name: field.name, value: 'false' }), '不同意'));
    case 'textarea':
    case 'lines':
      input = h('textarea', { id, name: field.name, rows: field.widget === 'lines' ? 2 : 3, required: field.required });
      input.value = value || '';
      break;
    case 'number':
      input = h('input', { id, name: field.name, type: 'number', min: field.minimum, max: field.maximum, step: field.step,
        required: field.required, value: value ?? '' });
      break;
    case 'datetime':
      input = h('input', { id, name: field.name, type: 'datetime-local' });
      break;
    default:
      input = h('input', { id, name: field.name, type: 'text', required: field.required, value: value ?? '',
        autocomplete: 'off' });
  }
  return h('div', { class: 'field' }, h('label', { for: id }, field.label), input);
}

async function readForm(form, spec) {
  const body = {};
  for (const field of spec.fields) {
    if (field.widget === 'units') {
      body[field.name] = [...form.querySelectorAll(`input[name="${field.name}"]:checked`)].map((i) => Number(i.value));
      continue;
    }
    const el = form.elements[field.name];
    if (!el) continue;
    const raw = (el.value ?? '').trim();
    if (raw === '') continue;
    // Opening a case creates a new one: case_id is only for explain/uphold/dismiss.
    if (field.widget === 'case' && form.elements.decision && form.elements.decision.value === 'open') continue;
    if (['unit', 'category', 'number', 'order', 'case'].includes(field.widget)) body[field.name] = Number(raw);
    else if (field.widget === 'approve') body[field.name] = raw === 'true';
    else if (field.widget === 'lines') body[field.name] = raw.split('\n').map((s) => s.trim()).filter(Boolean);
    else if (field.widget === 'datetime') body[field.name] = new Date(raw).toISOString();
    else if (field.widget === 'ticketref') body[field.name] = await resolveTicket(raw);
    else body[field.name] = raw;
  }
  return body;
}

async function resolveTicket(raw) {
  if (/^\d{1,9}$/.test(raw)) return Number(raw);
  const page = await api(`/api/tickets?q=${encodeURIComponent(raw)}&page_size=5`);
  const found = page.items.find((t) => t.number === raw);
  if (!found) throw new ApiError(422, `找不到工单 ${raw}`);
  return found.id;
}

export async function performAction(ticket, action, body) {
  return api(`/api/tickets/${ticket.id}/actions/${action}`, { method: 'POST', body: { version: ticket.version, ...body } });
}

/** What the unit asked for, shown beside the 延期审批 form: the extra working hours, the reason, who and when. */
function extensionRequest(ticket) {
  const request = [...(ticket.events || [])].reverse().find((e) => e.type === 'request_extension');
  if (!request) return null;
  return h('div', { class: 'ext-request' },
    h('p', {}, h('span', { class: 'k' }, '申请延长：'), h('strong', {}, `${request.data.working_hours} 个工作小时`),
      h('span', { class: 'muted small' }, ` · ${request.actor} · ${fmtTime(request.created_at)}`)),
    h('p', {}, h('span', { class: 'k' }, '延期理由：'), h('span', { class: 'text' }, request.note)));
}

/** The forms for the actions allowed now; ``ctx.defaults[action]`` pre-fills them (e.g. from the analysis). */
export function actionPanel(ticket, ctx) {
  const allowed = (ticket.allowed_actions || []).filter((a) => actionForm(a) && !(ctx.hide || []).includes(a));
  const panel = h('section', { class: 'actions', 'aria-label': '可执行操作' });
  if (!allowed.length) { panel.appendChild(h('p', { class: 'muted' }, '当前状态下没有可执行的操作。')); return panel; }
  const open = ctx.open || null;
  for (const name of allowed) {
    // ``ctx.labels`` renames an action for this page (the unit desk's 问责 is the unit's 问责说明)
    const base = actionForm(name);
    const spec = ctx.labels && ctx.labels[name] ? { ...base, label: ctx.labels[name] } : base;
    const formId = `f-${name}-${ticket.id}`;
    const defaults = (ctx.defaults && ctx.defaults[name]) || {};
    const form = h('form', { id: formId, class: `action-form act-${name}`, dataset: { action: name } },
      name === 'decide_extension' ? extensionRequest(ticket) : null,
      spec.fields.map((f) => fieldInput(f, ctx, ticket, defaults, formId)),
      h('div', { class: 'buttons' }, h('button', { type: 'submit', class: spec.primary ? 'primary' : '' }, `确认${spec.label}`)));
    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      const button = form.querySelector('button[type=submit]');
      button.disabled = true;
      try {
        const body = await readForm(form, spec);
        const updated = await performAction(ticket, name, body);
        toast(`${spec.label}成功：${updated.number} → ${labelOf('status', updated.status)}`, 'ok');
        ctx.onDone && ctx.onDone(updated, name);
      } catch (err) {
        toast(err.status === 409 ? `操作冲突：${err.message}（已刷新）` : `操作失败：${err.message}`, 'error');
        if (err.status === 409 && ctx.onConflict) ctx.onConflict();
      } finally {
        button.disabled = false;
      }
    });
    form.addEventListener('keydown', (e) => {
      if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) { e.preventDefault(); form.requestSubmit(); }
    });
    const details = h('details', { class: `action act-${name}`, open: open === name || (spec.fields.length === 0) },
      h('summary', { accesskey: spec.key || null, title: spec.key ? `Alt+${spec.key.toUpperCase()}` : null },
        spec.label, spec.key ? h('kbd', {}, spec.key.toUpperCase()) : null),
      form);
    details.addEventListener('toggle', () => {
      if (details.open) { const first = form.querySelector('input,select,textarea,button'); first && first.focus(); }
    });
    panel.appendChild(details);
  }
  return panel;
}

export function analysisPanel(ticket, ctx) {
  const a = ticket.analysis || {};
  const box = h('section', { class: 'analysis', 'aria-label': '智能分析' }, h('h3', {}, '智能分析'));
  const cats = a.categories || [];
  box.appendChild(h('div', { class: 'row' }, h('span', { class: 'k' }, '分类建议'),
    cats.length ? h('ol', { class: 'cats' }, cats.slice(0, 3).map((c) => h('li', {},
      h('span', { class: 'name' }, c.label), h('span', { class: 'bar' }, h('span', { style: { width: `${Math.round(c.probability * 100)}%` } })),
      h('span', { class: 'p' }, `${(c.probability * 100).toFixed(1)}%`)))) : h('span', { class: 'muted' }, '未分类（模型未给出建议）')));
  box.appendChild(h('div', { class: 'row' }, h('span', { class: 'k' }, '诉求类型'),
    h('span', {}, labels().kind[a.kind] || labels().kind[ticket.kind] || '—')));
  const urgent = a.urgent || ticket.urgent;
  // A follow-up (关联工单) of a transferred ticket: the emergency line already has it; say so, not "建议转"
  const receive = (ticket.events || []).find((e) => e.type === 'receive');
  const followsLine = receive && receive.data ? receive.data.follows_line : null;
  const line = followsLine ? ` · 原工单已转 ${followsLine}` : (a.emergency_line ? ` · 建议转 ${a.emergency_line}` : '');
  box.appendChild(h('div', { class: 'row' }, h('span', { class: 'k' }, '紧急程度'),
    urgent ? h('span', { class: 'urgent-text' }, '紧急', a.urgency_reason ? `：${a.urgency_reason}` : '', line)
      : h('span', {}, '一般')));
  box.appendChild(h('div', { class: 'row' }, h('span', { class: 'k' }, '地区'), h('span', {}, a.area_name || '未识别')));
  // ``ctx.route``: the route for the ticket's category now (after 更正分类 the catalogue's, not the first guess)
  const route = ctx.route || { unit_name: a.unit_name, co_unit_ids: a.co_unit_ids || [], explanation: a.route_explanation };
  box.appendChild(h('div', { class: 'row route' }, h('span', { class: 'k' }, '建议承办'),
    h('div', {}, h('span', { class: 'unit' }, route.unit_name || '无（需人工派单）',
      (route.co_unit_ids || []).length ? `；协办：${route.co_unit_ids.map((id) => unitName(ctx.units, id)).join('、')}` : ''),
    route.explanation ? h('div', { class: 'explain' }, route.explanation) : null)));
  const dups = a.duplicates || [];
  box.appendChild(h('div', { class: 'row' }, h('span', { class: 'k' }, '疑似重复'),
    dups.length ? h('ul', { class: 'dups' }, dups.map((d) => h('li', {},
      h('a', { href: '#', onclick: (e) => { e.preventDefault(); ctx.openTicket && ctx.openTicket(d.ticket_id); } }, d.number || `#${d.ticket_id}`),
      h('span', { class: 'p' }, ` 相似度 ${d.score}`),
      (ticket.allowed_actions || []).includes('merge')
        ? h('button', { type: 'button', class: 'small', onclick: () => ctx.prefill && ctx.prefill('merge', { parent_id: d.number || d.ticket_id }) }, '并入此单')
        : null))) : h('span', { class: 'muted' }, '无')));
  const kb = a.knowledge || [];
  const kbList = h('ul', { class: 'kb' });
  box.appendChild(h('div', { class: 'row' }, h('span', { class: 'k' }, '知识库'), kb.length ? kbList : h('span', { class: 'muted' }, '无匹配条目')));
  for (const k of kb) {
    const li = h('li', {}, h('span', { class: 'muted' }, `条目 #${k.article_id}（${k.score}）`));
    kbList.appendChild(li);
    api(`/api/knowledge/${k.article_id}`).then((art) => {
      const quote = (ticket.allowed_actions || []).includes('answer')
        ? () => ctx.prefill && ctx.prefill('answer', { note: art.body }) : null;
      li.replaceChildren(...articleView(art, { score: k.score, quote }));
    }).catch((e) => { li.replaceChildren(h('span', { class: 'muted' }, `条目 #${k.article_id} 无法加载：${e.message}`)); });
  }
  return box;
}

/**
 * One knowledge article as the agent's analysis panel shows it (the admin's editor previews it with the same code):
 * title, match score, the 引用答复 button (``quote``) only while the article is in effect, its validity and owning
 * unit, the start of its text. An article outside its dates is marked 已过期 / 未生效 and cannot be quoted.
 */
export function articleView(art, { score = null, quote = null } = {}) {
  const current = art.validity === 'current';
  const dates = art.valid_from || art.valid_to
    ? `有效期 ${art.valid_from || '即日'} 至 ${art.valid_to || '长期'}` : '';
  const facts = [art.owner_unit_name ? `维护单位：${art.owner_unit_name}` : '', dates].filter(Boolean).join(' · ');
  // (replaceChildren would turn a null into the text "null": filter the optional parts out)
  return [h('strong', {}, art.title),
    score !== null ? h('span', { class: 'p' }, ` 匹配 ${score}`) : null,
    current ? null : badge(labelOf('knowledge_validity', art.validity), 'warn'),
    current && quote ? h('button', { type: 'button', class: 'small', onclick: quote }, '引用答复') : null,
    facts ? h('div', { class: 'muted small kb-facts' }, facts) : null,
    h('p', { class: 'kb-body' }, art.body.slice(0, 160))].filter(Boolean);
}

/**
 * 督办 orders and 问责 cases of this ticket, each with its state: the order's demand and due time (an open one's
 * ``data-due`` lets the page turn it red the moment it passes) and the unit's answer, the case's reason, the
 * unit's explanation and the decision. ``showUnit``: name the unit (oversight roles see all). ``actions``: buttons
 * for what may be done from here (the supervisor's 督办, 催办, 问责); with them the panel shows even when empty.
 */
export function oversightPanel(orders, cases, { units = [], showUnit = false, now = Date.now(), actions = null } = {}) {
  if (!orders.length && !cases.length && !actions) return null;
  const unitLabel = (id) => (showUnit ? h('span', { class: 'muted small' }, ` · ${unitName(units, id)}`) : null);
  return h('section', { class: 'oversight', 'aria-label': '督办与问责' }, h('h3', {}, '督办与问责'),
    !orders.length && !cases.length ? h('p', { class: 'muted' }, '暂无督办与问责。') : null,
    h('ul', {},
      orders.map((o) => {
        const open = o.state === 'open';
        const late = open && Date.parse(o.due_at) < now;
        return h('li', { class: `order st-${o.state} ${late ? 'overdue' : ''}`, dataset: { orderId: o.id } },
          h('div', { class: 'line1' }, badge('督办', late ? 'danger' : (open ? 'warn' : '')),
            h('span', { class: 'order-state' }, labelOf('order_state', o.state)),
            h('span', { class: 'due', dataset: open ? { due: o.due_at } : {} }, `限办 ${fmtTime(o.due_at, true)}${late ? '（已超期）' : ''}`),
            h('span', { class: 'muted small' }, `下达于 ${fmtTime(o.issued_at)}`), unitLabel(o.unit_id)),
          h('p', { class: 'demand' }, h('span', { class: 'k' }, '督办要求：'), h('span', { class: 'text' }, o.note)),
          o.response ? h('p', { class: 'response' }, h('span', { class: 'k' }, `单位回复（${fmtTime(o.responded_at)}）：`),
            h('span', { class: 'text' }, o.response)) : null);
      }),
      cases.map((c) => h('li', { class: `case st-${c.state}`, dataset: { caseId: c.id } },
        h('div', { class: 'line1' }, badge('问责', c.state === 'opened' ? 'danger' : 'warn'),
          h('span', {}, labelOf('case_state', c.state)), h('span', { class: 'muted small' },
            `${labelOf('case_rule', c.rule)} · 立案于 ${fmtTime(c.opened_at)} · #${c.id}`), unitLabel(c.unit_id)),
        h('p', { class: 'reason' }, h('span', { class: 'k' }, '问责事由：'), h('span', { class: 'text' }, c.reason)),
        c.explanation ? h('p', { class: 'explanation' }, h('span', { class: 'k' }, '单位说明：'),
          h('span', { class: 'text' }, c.explanation)) : null,
        c.decision_note ? h('p', { class: 'decision' }, h('span', { class: 'k' }, '决定意见：'),
          h('span', { class: 'text' }, c.decision_note)) : null))),
    actions && actions.length ? h('div', { class: 'oversight-actions buttons' },
      actions.map((a) => h('button', { type: 'button', class: 'small', onclick: a.onclick }, a.label))) : null);
}

/** Open an action's form on the rendered ticket, bring it into view and put the cursor in its first field. */
export function openActionForm(container, name) {
  const details = container.querySelector(`details.act-${name}`);
  if (!details) return;
  details.open = true;
  details.scrollIntoView({ block: 'nearest' });
  const first = details.querySelector('form input, form select, form textarea');
  if (first) first.focus();
}

/** Phones and narrow windows show the list above the ticket: bring the opened ticket into view (below the top bar,
 * whose height the page keeps in ``--topbar-h``), and its list item again for 返回列表. Wide screens show both. */
export function narrowScreen() { return window.matchMedia('(max-width: 800px)').matches; }

export function revealTicket(container) {
  if (narrowScreen()) container.scrollIntoView({ block: 'start' });
}

/** A ticket named in another one's history: a link when the page can open it (``ctx.openTicket``). */
function ticketLink(id, number, ctx) {
  if (!ctx.openTicket || id === undefined) return h('span', { class: 'number' }, number);
  return h('a', { href: '#', class: 'number', dataset: { ticketId: id },
    onclick: (e) => { e.preventDefault(); ctx.openTicket(id); } }, number);
}

/** 关联工单: the transferred ticket names its follow-up, the follow-up where it came from (units: only the line). */
function followUpNote(e, ctx) {
  const d = e.data || {};
  if (d.follow_up_number) return h('div', { class: 'note link' }, '新建关联工单 ', ticketLink(d.follow_up_id, d.follow_up_number, ctx));
  if (!d.follows_line && !d.follows_number) return null;
  const line = d.follows_line ? `转警（${labelOf('emergency_line', d.follows_line)}）后` : '';
  return h('div', { class: 'note link' }, d.follows_number
    ? ['由工单 ', ticketLink(d.follows_id, d.follows_number, ctx), ` ${line}新建的关联工单`] : `${line}新建的关联工单`);
}

export function historyList(ticket, ctx = {}) {
  return h('section', { class: 'history', 'aria-label': '办理记录' }, h('h3', {}, '办理记录'),
    h('ol', {}, (ticket.events || []).map((e) => h('li', {},
      h('time', { datetime: e.created_at }, fmtTime(e.created_at)),
      h('span', { class: 'ev' }, labelOf('event', e.type)),
      h('span', { class: 'actor' }, e.actor),
      e.to_status ? h('span', { class: 'muted' }, ` → ${labelOf('status', e.to_status)}`) : null,
      e.note ? h('div', { class: 'note' }, e.note) : null,
      followUpNote(e, ctx),
      e.data && e.data.attachments && e.data.attachments.length ? h('div', { class: 'note' },
        `附件：${e.data.attachments.map((a) => (typeof a === 'string' ? a : (a.fetch ? labelOf('attachment_kind', a.kind) : a.url || labelOf('attachment_kind', a.kind)))).join('；')}`) : null))));
}

/** What came in from the citizen and what went back, with its delivery state (failed ones stand out). */
export function conversationList(ticket) {
  const items = ticket.conversation || [];
  if (!items.length) return null;
  return h('section', { class: 'conversation', 'aria-label': '与市民的往来' }, h('h3', {}, '与市民的往来'),
    h('ol', {}, items.map((m) => h('li', { class: `msg ${m.direction} ${m.state}` },
      h('time', { datetime: m.at }, fmtTime(m.at)),
      h('span', { class: 'ev' }, m.direction === 'in' ? `来自${labelOf('channel', m.channel)}`
        : `${labelOf('outbox_kind', m.kind)} → ${labelOf('channel', m.channel)}${m.recipient ? ` ${m.recipient}` : ''}`),
      h('span', { class: m.state === 'failed' ? 'badge danger' : 'muted' }, labelOf('delivery', m.state)),
      m.attempts > 1 ? h('span', { class: 'muted small' }, `（第 ${m.attempts} 次）`) : null,
      h('div', { class: 'note' }, m.text),
      m.state === 'failed' && m.last_error ? h('div', { class: 'note muted small' }, `原因：${m.last_error}`) : null))));
}

/** The latest callback (回访) on the ticket itself: solved or not, satisfaction, and what the citizen said. */
export function callbackResult(cb) {
  if (!cb) return null;
  return h('section', { class: `callback-result sat-${cb.satisfaction}`, 'aria-label': '回访结果' }, h('h3', {}, '回访结果'),
    h('p', {}, h('span', { class: 'k' }, '是否解决：'), h('strong', {}, cb.solved ? '已解决' : '未解决'), ' · ',
      h('span', { class: 'k' }, '满意度：'), h('strong', {}, labelOf('satisfaction', cb.satisfaction)),
      h('span', { class: 'muted small' }, ` · ${cb.actor} · ${fmtTime(cb.at)}`)),
    cb.note ? h('p', { class: 'words' }, h('span', { class: 'k' }, '市民意见：'), h('span', { class: 'text' }, cb.note)) : null);
}

function fmtSize(bytes) {
  return bytes >= 1024 * 1024 ? `${(bytes / 1024 / 1024).toFixed(1)} MB` : `${Math.max(1, Math.round(bytes / 1024))} KB`;
}

/** A stored photo shown inline, a stored voice message or recording with a player (and a download link: browsers do
 * not play WeChat's AMR voice). The bytes come with the bearer token, so they load after the page. */
function attachmentMedia(a) {
  const isImage = a.kind === 'image' || (a.content_type || '').startsWith('image/');
  const media = isImage ? h('img', { class: 'attachment-image', alt: `市民发来的${labelOf('attachment_kind', a.kind)}` })
    : h('audio', { controls: true, preload: 'metadata' });
  const download = h('a', { class: 'small', download: `附件${a.id}` }, '下载');
  apiBlobUrl(a.url).then((url) => { media.src = url; download.href = url; })
    .catch((err) => { media.replaceWith(h('span', { class: 'badge danger' }, `无法打开：${err.message}`)); });
  return h('div', { class: 'attachment-media' }, media, isImage ? null : download);
}

/** The files that came with the citizen's messages: photos inline, voice with a player, refusals with their reason. */
export function attachmentList(ticket) {
  const items = ticket.attachments || [];
  if (!items.length) return null;
  return h('section', { class: 'attachments', 'aria-label': '附件' }, h('h3', {}, '附件'),
    h('ul', {}, items.map((a) => h('li', { class: `attachment ${a.kind} ${a.state}`, dataset: { attachmentId: String(a.id) } },
      h('span', { class: 'ev' }, labelOf('attachment_kind', a.kind)),
      h('span', { class: a.state === 'refused' ? 'badge danger' : 'muted' }, labelOf('attachment_state', a.state)),
      a.size != null ? h('span', { class: 'muted small' }, ` ${fmtSize(a.size)}`) : null,
      a.url ? attachmentMedia(a) : null,
      a.source_url ? h('a', { href: a.source_url, target: '_blank', rel: 'noopener noreferrer' }, '打开原链接') : null,
      a.reason ? h('div', { class: 'note' }, `原因：${a.reason}`) : null,
      a.may_retry ? retryButton(a) : null))));
}

/** 重新获取: a refused file goes back to the worker (the media API is back, the size limit was raised). */
function retryButton(a) {
  const button = h('button', { type: 'button', class: 'small retry-attachment' }, '重新获取');
  button.addEventListener('click', async () => {
    button.disabled = true;
    try {
      const updated = await api(`/api/attachments/${a.id}/retry`, { method: 'POST' });
      const item = button.closest('li');
      item.classList.replace('refused', updated.state);
      item.querySelector('.badge.danger').replaceWith(h('span', { class: 'muted' }, labelOf('attachment_state', updated.state)));
      const note = item.querySelector('.note');
      if (note) note.remove();
      button.remove();
      toast('已重新排队获取附件，稍后刷新即可查看', 'ok');
    } catch (err) {
      toast(`重新获取失败：${err.message}`, 'error');
      button.disabled = false;
    }
  });
  return button;
}

/** 重办 mark: a ticket a supervisor reopened after an unsatisfied callback (the count when more than once). */
export function reworkBadge(ticket) {
  if (!ticket.reopen_count) return null;
  return badge(ticket.reopen_count > 1 ? `重办 ×${ticket.reopen_count}` : '重办', 'rework');
}

/** The whole ticket: header, text, citizen, units, optional analysis, actions, history. */
export function renderTicket(container, ticket, ctx) {
  clear(container);
  container.dataset.ticketId = ticket.id;
  const head = h('header', { class: 'ticket-head' },
    h('h2', {}, h('span', { class: 'number' }, ticket.number), ' ', h('span', { class: 'title' }, ticket.title || '（无标题）')),
    h('div', { class: 'badges' }, statusBadge(ticket.status), ticket.urgent ? badge('紧急', 'urgent') : null,
      ticket.confidential ? badge('保密', 'secret') : null, ticket.extension_pending ? badge('延期审批中', 'warn') : null,
      reworkBadge(ticket), badge(labelOf('kind', ticket.kind))));
  const rework = ticket.reopen_count && ticket.reopen_reason
    ? h('p', { class: 'rework-reason' }, h('span', { class: 'k' }, '重办理由：'), h('span', { class: 'text' }, ticket.reopen_reason))
    : null;
  const meta = h('dl', { class: 'meta' },
    h('dt', {}, '渠道'), h('dd', {}, labelOf('channel', ticket.channel)),
    h('dt', {}, '受理时间'), h('dd', {}, fmtTime(ticket.received_at, true)),
    h('dt', {}, '地点'), h('dd', {}, ticket.location || '—'),
    h('dt', {}, '分类'), h('dd', {}, ticket.category ? ticket.category.name : '未分类'),
    h('dt', {}, '主办单位'), h('dd', {}, ticket.unit ? ticket.unit.name : '—'),
    h('dt', {}, '协办单位'), h('dd', {}, ticket.co_units.length ? ticket.co_units.map((id) => unitName(ctx.units, id)).join('、') : '—'),
    // 未留姓名, not 匿名: a caller who gave no name did not ask for anonymity (that is 保密)
    h('dt', {}, '市民'), h('dd', {}, ticket.citizen ? `${ticket.citizen.name || '未留姓名'} ${ticket.citizen.phone || ''}` : (ticket.confidential ? '保密' : '未留姓名')),
    h('dt', {}, '签收时限'), h('dd', {}, fmtTime(ticket.sign_due, true)),
    h('dt', {}, '答复时限'), h('dd', {}, fmtTime(ticket.reply_due, true)));
  const body = h('section', { class: 'complaint', 'aria-label': '诉求内容' }, h('h3', {}, '诉求内容'),
    h('p', { class: 'text' }, ticket.text));
  const reply = ticket.reply_text ? h('section', { class: 'reply' }, h('h3', {}, '答复内容'), h('p', { class: 'text' }, ticket.reply_text)) : null;
  // 返回列表: on a phone the list is above the ticket (CSS shows the button on narrow screens only)
  if (ctx.backToList) container.append(h('button', { type: 'button', class: 'back-to-list', onclick: ctx.backToList }, '返回列表'));
  container.append(head);
  if (rework) container.append(rework);
  container.append(body, meta);
  if (reply) container.append(reply);
  const callback = callbackResult(ticket.last_callback);
  if (callback) container.append(callback);
  if (ctx.showAnalysis) container.append(analysisPanel(ticket, ctx));
  if (ctx.beforeActions) container.append(...ctx.beforeActions(ticket).filter(Boolean));
  container.append(actionPanel(ticket, ctx));
  const files = attachmentList(ticket);
  if (files) container.append(files);
  const talk = conversationList(ticket);
  if (talk) container.append(talk);
  if (ticket.events) container.append(historyList(ticket, ctx));
  if (ctx.afterRender) ctx.afterRender(ticket);
}
