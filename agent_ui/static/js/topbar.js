// Page chrome: the session and role check every desk page starts with (it also loads the server's config), and
// the top bar with the role's navigation, the connection light, the user and logout.
import { api, logout, saveMe, toLogin, token } from './api.js';
import { h } from './dom.js';
import { config, homeOf, labelOf, loadConfig } from './config.js';

/** This page as the server describes it (path, title, the roles that may open it). */
function thisPage() {
  const page = config().pages.find((p) => p.path === location.pathname);
  if (!page) throw new Error(`${location.pathname} is not a desk page`);
  return page;
}

/** A promise that never settles: the page's script stops at its ``await`` without an (uncaught) error. */
const STOP = () => new Promise(() => {});

/**
 * Check the session and that the user's role may open this page, and load the desk config; returns the current
 * user or redirects to the login page. Once it returned, every label, form and policy of the config is there.
 * A page for other roles says whose desk it is and links to the user's own; the page's script goes no further.
 */
export async function requireUser() {
  if (!token()) { toLogin(); return STOP(); }
  const [me] = await Promise.all([api('/api/me'), loadConfig()]);
  saveMe(me);
  const page = thisPage();
  if (!page.roles.includes(me.role)) {
    const home = config().pages.find((p) => p.path === homeOf(me.role));
    const forRoles = page.roles.map((r) => labelOf('role', r)).join('、');
    document.title = `无权访问 · ${page.title} · 12345`;
    document.body.replaceChildren(h('main', { class: 'denied' },
      h('h1', {}, '无权访问此页面'),
      h('p', {}, `「${page.title}」供${forRoles}使用，您的角色是「${labelOf('role', me.role)}」。`),
      h('p', {}, h('a', { href: homeOf(me.role) }, `前往我的工作台${home ? `（${home.title}）` : ''}`))));
    return STOP();
  }
  return me;
}

/** The top bar: the page's title, the pages the role may open, connection light, user, logout. */
export function topbar(me) {
  const links = config().pages.filter((p) => p.roles.includes(me.role)).map((p) => [p.path, p.title]);
  const bar = h('header', { class: 'topbar' },
    h('div', { class: 'brand' }, h('span', { class: 'logo', 'aria-hidden': 'true' }, '12345'), h('span', {}, thisPage().title)),
    h('nav', { 'aria-label': '页面导航' }, links.map(([href, text]) =>
      h('a', { href, class: location.pathname === href ? 'active' : '', 'aria-current': location.pathname === href ? 'page' : null }, text))),
    h('div', { class: 'who' },
      h('span', { id: 'live-state', class: 'live off', title: '实时连接状态', role: 'status' }, '连接中…'),
      h('span', { class: 'user' }, `${me.name}（${labelOf('role', me.role)}）`),
      h('button', { type: 'button', class: 'link', onclick: logout }, '退出')));
  document.body.prepend(bar);
  // The bar is sticky and wraps on a phone: what scrolls into view must stop below it (CSS scroll-margin-top).
  const keepHeight = () => document.documentElement.style.setProperty('--topbar-h', `${bar.offsetHeight}px`);
  new ResizeObserver(keepHeight).observe(bar);
  keepHeight();
  return bar;
}
