// Login: exchange username/password for a bearer token, keep it in sessionStorage, go to the role's desk.
import { STORAGE, api, saveLogin } from './api.js';
import { homeOf, loadConfig } from './config.js';

const form = document.getElementById('login-form');
const error = document.getElementById('login-error');

form.addEventListener('submit', async (e) => {
  e.preventDefault();
  error.hidden = true;
  const button = form.querySelector('button');
  button.disabled = true;
  try {
    const out = await api('/api/auth/login', { method: 'POST', auth: false, body: {
      username: form.username.value.trim(), password: form.password.value } });
    sessionStorage.setItem(STORAGE.token, out.access_token);
    const [me] = await Promise.all([api('/api/me'), loadConfig()]);
    saveLogin(out.access_token, me);
    sessionStorage.removeItem(STORAGE.lastEventId);
    const next = new URLSearchParams(location.search).get('next');
    location.assign(next && next.startsWith('/desk/') ? next : homeOf(me.role));
  } catch (err) {
    error.textContent = err.status === 401 ? '用户名或密码错误' : `登录失败：${err.message}`;
    error.hidden = false;
  } finally {
    button.disabled = false;
  }
});
