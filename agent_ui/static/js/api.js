// The session and the REST API: the bearer token in sessionStorage, fetch with it, errors as ApiError.

/** Everything the desk keeps in sessionStorage (cleared on logout). */
export const STORAGE = {
  token: 'hotline.token',
  me: 'hotline.me',
  lastEventId: 'hotline.lastEventId',
  seenEventIds: 'hotline.seenEventIds',
};

export function token() { return sessionStorage.getItem(STORAGE.token); }

export function saveLogin(accessToken, me) {
  sessionStorage.setItem(STORAGE.token, accessToken);
  sessionStorage.setItem(STORAGE.me, JSON.stringify(me));
}

export function saveMe(me) { sessionStorage.setItem(STORAGE.me, JSON.stringify(me)); }

export function logout() {
  for (const key of Object.values(STORAGE)) sessionStorage.removeItem(key);
  location.assign('/');
}

/** Back to the login page, which returns here after logging in. */
export function toLogin() {
  sessionStorage.removeItem(STORAGE.token);
  location.assign(`/?next=${encodeURIComponent(location.pathname)}`);
}

export class ApiError extends Error {
  constructor(status, detail) { super(detail); this.status = status; }
}

export async function api(path, { method = 'GET', body, auth = true } = {}) {
  const headers = { Accept: 'application/json' };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (auth) {
    const t = token();
    if (!t) { toLogin(); throw new ApiError(401, '请先登录'); }
    headers.Authorization = `Bearer ${t}`;
  }
  const response = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  if (response.status === 401 && auth) { toLogin(); throw new ApiError(401, '登录已过期'); }
  const data = response.status === 204 ? null : await response.json().catch(() => null);
  if (!response.ok) throw new ApiError(response.status, (data && data.detail) || `HTTP ${response.status}`);
  return data;
}

/** A stored file (``GET /api/attachments/{id}``) as an object URL for an <img> or <audio> (the bearer token cannot
 * ride on their own src). */
export async function apiBlobUrl(path) {
  const t = token();
  if (!t) { toLogin(); throw new ApiError(401, '请先登录'); }
  const response = await fetch(path, { headers: { Authorization: `Bearer ${t}` } });
  if (response.status === 401) { toLogin(); throw new ApiError(401, '登录已过期'); }
  if (!response.ok) {
    const data = await response.json().catch(() => null);
    throw new ApiError(response.status, (data && data.detail) || `HTTP ${response.status}`);
  }
  return URL.createObjectURL(await response.blob());
}
