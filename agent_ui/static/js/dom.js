// The DOM builder of the desk: it only ever inserts text (citizen text is data, never markup), plus the toast,
// badges and the "this ticket changed" notice.

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

export function badge(text, kind = '') { return h('span', { class: `badge ${kind}` }, text); }

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
