// The console's entry: sign-in, the navigation, and a router over the
// URL's fragment (#/routes/abc), so that the server serves one index and
// every other path under /console/ is a plain 404.
import { h, show, notice } from './dom.js';
import { call, session, whenUnauthorized, explain } from './api.js';
import * as pages from './pages.js';
import { errorNotice } from './forms.js';
import * as access from './access.js';

const resources = ['routes', 'services', 'consumers', 'policies', 'tokens'];

async function route() {
  pages.stopPolling();
  if (!session.token() || !session.me) return signIn();
  const [path, qs] = (location.hash.replace(/^#/, '') || home().slice(1)).split('?');
  const [page = 'overview', id] = path.split('/').filter(Boolean).map(decodeURIComponent);
  const query = new URLSearchParams(qs || '');
  const here = '#/' + path.replace(/^\//, '');
  for (const a of document.querySelectorAll('#nav a')) {
    if (a.getAttribute('href') === '#/' + page || a.getAttribute('href') === here) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  // A page the token cannot use (a deep link, a bookmark) says why,
  // rather than showing the API's 403.
  const why = Object.hasOwn(access.pages, page) ? access.refusal(session.me, page, id) : '';
  if (why) return pages.refused(access.pages[page], why, access.home(session.me));
  try {
    if (page === 'overview') await pages.overview();
    else if (resources.includes(page)) await (id ? pages.edit(page, id) : pages.list(page));
    else if (page === 'specs') await pages.specs(id);
    else if (page === 'deployments') await pages.deployments(id);
    else if (page === 'revisions') await pages.revisions(id, query);
    else pages.notFound();
  } catch (err) {
    if (err.status === 401) return;
    show(h('h1', {}, 'Something went wrong'), errorNotice(err));
    if (!err.status) throw err;
  }
}
pages.setRouter(route);

// home is the first page: the overview, or a scoped token's consumer.
const home = () => access.home(session.me);

// whoami reads what the token may do: its role (GET /token), and whether
// this node takes writes at all (OPTIONS answers Allow without POST on a
// node configured from files).
async function whoami() {
  session.me = (await call('GET', '/token')).body;
  // A token scoped to a consumer reaches only that consumer's paths.
  const probe = session.me.consumer_id ? `/consumers/${encodeURIComponent(session.me.consumer_id)}/credentials` : '/services';
  const opt = await call('OPTIONS', probe);
  session.writable = /\bPOST\b/.test(opt.headers.get('Allow') || '');
  const who = document.getElementById('who');
  who.textContent = `${session.me.name || session.me.id} · ${session.me.role}` +
    (session.me.consumer_id ? ` · consumer ${session.me.consumer_id}` : '') +
    (session.writable ? '' : ' · node read-only');
  access.showNav(document.getElementById('nav'), session.me);
  document.getElementById('nav').hidden = false;
  document.getElementById('signout').hidden = false;
}

function signOut(message) {
  pages.stopPolling();
  session.clear();
  session.me = null;
  access.showNav(document.getElementById('nav'), null);
  document.getElementById('nav').hidden = true;
  document.getElementById('signout').hidden = true;
  document.getElementById('who').textContent = '';
  signIn(message);
}

function signIn(message) {
  const input = h('input', { id: 'token', type: 'password', autocomplete: 'off', required: true, spellcheck: 'false' });
  const status = h('div', { 'aria-live': 'polite' }, message || '');
  const submit = async ev => {
    ev.preventDefault();
    status.replaceChildren();
    session.set(input.value.trim());
    try {
      await whoami();
      if (!location.hash || location.hash === '#/') location.hash = home();
      await route();
    } catch (err) {
      session.clear();
      session.me = null;
      status.append(err.status ? notice('error', 'Not signed in', explain(err)) : errorNotice(err));
    }
  };
  show(h('div', { class: 'signin panel' },
    h('h1', {}, 'Sign in'),
    h('p', {}, 'Paste an admin token. It is kept in this tab only (sessionStorage) and sent to the admin API as its Authorization header.'),
    h('form', { class: 'resource', onsubmit: submit },
      h('div', { class: 'field' }, h('label', { for: 'token' }, 'Admin token'), input),
      h('div', { class: 'actions' }, h('button', { type: 'submit', id: 'signin' }, 'Sign in'))),
    status));
  input.focus();
}

whenUnauthorized(err => signOut(notice('error', 'Signed out', explain(err))));
document.getElementById('signout').addEventListener('click', () => signOut(notice('ok', '', 'Signed out.')));
// A new page takes the focus, so that keyboard and screen reader users
// start at its top, as after a page load.
window.addEventListener('hashchange', async () => {
  await route();
  const h1 = document.querySelector('main h1');
  if (h1 && !document.activeElement.closest('main form')) {
    h1.tabIndex = -1;
    h1.focus({ preventScroll: true });
  }
});

// A token kept from earlier in this tab signs in again on reload.
if (session.token()) {
  whoami().then(route, err => signOut(err.status ? notice('error', 'Not signed in', explain(err)) : errorNotice(err)));
} else {
  signIn();
}
