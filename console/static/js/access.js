// What a token may use of the console, from what GET /admin/v1/token
// says of it, by the API's own rule (admin/auth.go, authorize): a token
// scoped to a consumer reaches that consumer and its credentials, and
// nothing else (403); any other token reads every page, and a read-only
// one edits nothing (api.js, canEdit). The API refuses what this lets
// through anyway: this only spares the user pages that could show no
// more than a 403.

// pages are the console's pages, by the fragment's first segment.
export const pages = {
  overview: 'Overview', routes: 'Routes', services: 'Services', consumers: 'Consumers',
  policies: 'Policies', specs: 'Specs', deployments: 'Deployments', revisions: 'Revisions', tokens: 'Tokens',
};

// refusal says why the token me cannot use the page (with its item id),
// or '' when it can.
export function refusal(me, page, id) {
  const own = me && me.consumer_id;
  if (!own || (page === 'consumers' && id === own)) return '';
  return `This token is limited to consumer ${own} and its credentials: ` +
    `the admin API refuses it everything else, ${page === 'consumers' && id ? 'another consumer' : 'this page'} included.`;
}

// home is the page a token starts at: the overview, or a scoped token's
// consumer.
export const home = me => me && me.consumer_id ? '#/consumers/' + encodeURIComponent(me.consumer_id) : '#/overview';

// showNav shows in nav the links of the pages me can use: for a scoped
// token, only its consumer's, added as a link of its own; with me null
// (signed out), the links as they were.
export function showNav(nav, me) {
  for (const a of nav.querySelectorAll('a[data-own]')) a.remove();
  for (const a of nav.querySelectorAll('a')) {
    a.hidden = !!refusal(me, a.getAttribute('href').replace(/^#\//, ''));
  }
  if (me && me.consumer_id) {
    const a = document.createElement('a');
    a.href = home(me);
    a.dataset.own = '';
    a.textContent = 'Consumer ' + me.consumer_id;
    nav.append(a);
  }
}
