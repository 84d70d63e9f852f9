// The admin API as the console uses it: every request carries the token
// as "Authorization: Bearer", never in a URL and never in a cookie; every
// refusal becomes an ApiError holding the API's problem document.

const KEY = 'gatehouse.console.token';

export const session = {
  token: () => sessionStorage.getItem(KEY),
  set: t => sessionStorage.setItem(KEY, t),
  clear: () => sessionStorage.removeItem(KEY),
  // me is the token's own description (GET /admin/v1/token) and whether
  // this node takes writes at all (a node configured from files answers
  // OPTIONS without POST).
  me: null,
  writable: false,
};

export const canEdit = () => session.writable && session.me && session.me.role === 'admin';

export class ApiError extends Error {
  constructor(status, problem, headers) {
    super((problem && (problem.detail || problem.title)) || `HTTP ${status}`);
    this.status = status;
    this.problem = problem || {};
    this.headers = headers;
  }
  get fieldErrors() { return Array.isArray(this.problem.errors) ? this.problem.errors : []; }
}

// onUnauthorized is called with the error of any 401: the token is gone.
let onUnauthorized = () => {};
export function whenUnauthorized(fn) { onUnauthorized = fn; }

// call sends a request to /admin/v1 + path. body is sent as JSON unless
// contentType is given with a string body (a spec's document). accept
// names another media type to ask for (a spec's document in its own
// format); refusals still come as problem documents.
export async function call(method, path, { body, ifMatch, contentType, accept } = {}) {
  const headers = { Accept: accept ? accept + ', application/problem+json' : 'application/json' };
  const t = session.token();
  if (t) headers.Authorization = 'Bearer ' + t;
  let payload;
  if (body !== undefined) {
    if (contentType && typeof body === 'string') payload = body;
    else payload = JSON.stringify(body);
    headers['Content-Type'] = contentType || 'application/json';
  }
  if (ifMatch) headers['If-Match'] = ifMatch;
  const resp = await fetch('/admin/v1' + path, {
    method, headers, body: payload, cache: 'no-store', credentials: 'omit', redirect: 'error',
  });
  const ct = resp.headers.get('Content-Type') || '';
  let data = null;
  if (resp.status !== 204 && resp.status !== 304 && method !== 'HEAD') {
    data = /json/.test(ct) ? await resp.json().catch(() => null) : await resp.text();
  }
  if (!resp.ok) {
    const err = new ApiError(resp.status, data && typeof data === 'object' ? data : null, resp.headers);
    if (resp.status === 401) onUnauthorized(err);
    throw err;
  }
  return { status: resp.status, body: data, etag: resp.headers.get('ETag'),
    location: resp.headers.get('Location'), headers: resp.headers };
}

export const get = (path, opts) => call('GET', path, opts);

// listAll reads every page of a collection.
export async function listAll(path) {
  const out = [];
  let cursor = '';
  for (let i = 0; i < 100; i++) {
    const sep = path.includes('?') ? '&' : '?';
    const r = await get(path + sep + 'limit=500' + (cursor ? '&cursor=' + encodeURIComponent(cursor) : ''));
    out.push(...(r.body.data || []));
    cursor = r.body.next_cursor;
    if (!cursor) break;
  }
  return out;
}

// explain says in words what a refusal means, for the statuses whose
// meaning is the API's own rules rather than one field.
export function explain(err) {
  const d = err.problem.detail || err.message;
  switch (err.status) {
    case 401: return 'Your token is not valid any more (unknown, revoked or expired). Sign in again. ' + d;
    case 403: return 'Your token may not do this: it is read-only, or limited to one consumer. ' + d;
    case 404: return 'This does not exist (it never did, or the retention of its deletion has passed). ' + d;
    case 405: return 'This server does not take this change here: ' + d;
    case 409: return 'Conflict: the change clashes with what exists now (an id already taken, a resource others still reference, or a route matching what another matches). ' + d;
    case 410: return 'Gone: this was deleted (the server remembers the deletion for a while). It can no longer be changed; create it anew if you need it. ' + d;
    case 412: return 'Someone else changed this since you opened it, so your change was not applied. ' + d;
    case 413: return 'Too large for the server: ' + d;
    case 503: return 'The server cannot answer now (its store is unreachable, or it is shutting down)' +
      (err.headers && err.headers.get('Retry-After') ? '; retry in ' + err.headers.get('Retry-After') + ' s' : '') + '. ' + d;
    default: return `${err.status} ${err.problem.title || ''}: ${d}`;
  }
}

// fieldChanges lists the members that differ between two versions of a
// resource as JSON pointers, with their old and new values.
export function fieldChanges(before, after, ignore = ['version', 'updated_at']) {
  const out = [];
  const walk = (a, b, ptr) => {
    const obj = v => v && typeof v === 'object' && !Array.isArray(v);
    if (obj(a) && obj(b)) {
      for (const k of new Set([...Object.keys(a), ...Object.keys(b)])) {
        if (ptr === '' && ignore.includes(k)) continue;
        walk(a[k], b[k], ptr + '/' + k.replaceAll('~', '~0').replaceAll('/', '~1'));
      }
    } else if (JSON.stringify(a) !== JSON.stringify(b)) {
      out.push({ field: ptr, from: a, to: b });
    }
  };
  walk(before || {}, after || {}, '');
  return out;
}
