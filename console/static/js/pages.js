// The pages. Each is an async function that renders into main; the router
// (app.js) calls it with the fragment's path segments and query.
import { h, table, notice, show, when, stateBadge } from './dom.js';
import { call, get, listAll, canEdit } from './api.js';
import { resourceForm, errorNotice, fmt } from './forms.js';
import { kinds, credentialFields, newPath } from './kinds.js';
import * as live from './live.js';

const byId = rows => Object.fromEntries(rows.map(r => [r.id, r]));
const go = hash => { location.hash = hash; };
// route re-renders the page shown; app.js sets it.
let route = () => {};
export function setRouter(fn) { route = fn; }
let flash = null; // a message for the next page shown (after a save)
const takeFlash = () => { const f = flash; flash = null; return f; };
// polling counts the pages shown: a page's poll (a deployment's progress,
// the live figures) runs while it is the one asked for last.
let polling = 0;

// The overview: the active revision and the nodes, read once, and the
// live figures (live.js), asked every few seconds while it is shown.
export async function overview() {
  const page = polling;
  const [nodes, deployments] = await Promise.all([listAll('/nodes'), listAll('/deployments')]);
  if (page !== polling) return; // another page was asked for meanwhile: it polls, not this one
  const recent = newestFirst(deployments);
  const active = recent.find(d => d.state === 'succeeded');
  const figures = live.overview();
  show(h('h1', {}, 'Overview'),
    figures.problem,
    h('div', { class: 'grid' },
      h('div', { class: 'panel', id: 'active-revision' }, h('div', { class: 'muted' }, 'Active revision'),
        h('div', { class: 'stat' }, active ? (active.revision ? String(active.revision) : 'none (undeployed)') : 'none yet')),
      h('div', { class: 'panel' }, h('div', { class: 'muted' }, 'Nodes live'),
        h('div', { class: 'stat' }, `${nodes.filter(n => n.state === 'live').length} of ${nodes.length}`)),
      figures.panels),
    figures.nodesLine,
    h('h2', {}, 'Nodes'),
    nodeTable(nodes, figures.nodeCell),
    h('h2', {}, 'Last deployments'),
    deploymentTable(recent.slice(0, 5)),
    h('p', {}, h('a', { href: '#/deployments' }, 'All deployments')));
  figures.start();
}

function nodeTable(nodes, liveCell) {
  return table([
    ['Node', n => h('code', {}, n.id)],
    ['Role', n => n.role],
    ['State', n => stateBadge(n.state)],
    ['Serves revision', n => n.revision ? String(n.revision) : 'none'],
    ['Live traffic', n => liveCell(n.id)],
    ['Last seen', n => when(n.last_seen)],
    ['Apply error', n => n.apply_error || ''],
  ], nodes, 'No node has registered.');
}

const newestFirst = ds => [...ds].sort((a, b) => String(b.created_at).localeCompare(String(a.created_at)) || String(b.id).localeCompare(String(a.id)));

function deploymentTable(ds) {
  return table([
    ['Deployment', d => h('a', { href: '#/deployments/' + encodeURIComponent(d.id) }, d.id)],
    ['Action', d => d.action],
    ['Revision', d => String(d.revision)],
    ['Replaced', d => d.replaced_revision === undefined ? '' : [String(d.replaced_revision), ' ',
      d.revision ? h('a', { href: `#/revisions?from=${d.replaced_revision}&to=${d.revision}` }, 'what changed') : null]],
    ['State', d => [stateBadge(d.state), d.reason ? ' ' + d.reason : '']],
    ['Started', d => when(d.started_at || d.created_at)],
  ], ds, 'Nothing deployed yet.');
}

async function context(kind) {
  const ctx = { services: {}, policyTypes: [] };
  const needs = kind.needs || [];
  if (needs.includes('services')) ctx.services = byId(await listAll('/services'));
  if (needs.includes('policyTypes')) ctx.policyTypes = (await loadAPIDoc()).components.schemas.Policy.properties.type.enum;
  return ctx;
}

export async function list(name) {
  const kind = kinds[name];
  const page = polling;
  const [rows, ctx] = await Promise.all([listAll(kind.path), context(kind)]);
  if (page !== polling) return;
  const main = show(h('h1', {}, kind.title),
    takeFlash(),
    canEdit() ? h('div', { class: 'actions' }, h('a', { class: 'button', href: newPath(name) }, `New ${kind.singular}`)) : null,
    table(kind.columns(ctx), rows, `No ${kind.title.toLowerCase()} yet.`),
    name === 'routes' || name === 'services' || name === 'consumers' || name === 'policies'
      ? h('p', { class: 'muted' }, 'Changes go to the draft; deploy them on the Deployments page.') : null);
  if (kind.live && rows.length) live.watchList(main);
}

export async function edit(name, id) {
  const page = polling;
  const kind = kinds[name];
  const ctx = await context(kind);
  if (page !== polling) return;
  const fields = kind.fields(ctx);
  const itemPath = r => `${kind.path}/${encodeURIComponent(r.id)}`;
  const onSaved = (res, verb) => {
    flash = notice('ok', '', `${kind.singular[0].toUpperCase() + kind.singular.slice(1)} ${verb}.`,
      res && res.body && res.body.token ? secretShown('token', res.body.token) : null);
    go(`#/${name}/${encodeURIComponent(res.body.id)}`);
    if (verb === 'saved') route();
  };
  // A policy's editor shows its type's configuration schema, following
  // the type chosen.
  const schemaBox = name === 'policies' ? h('div', { id: 'policy-schema' }) : null;
  const followType = () => {
    const sel = document.getElementById('f-type');
    if (!schemaBox || !sel) return;
    const update = () => schemaBox.replaceChildren(sel.value ? policySchema(sel.value) : '');
    sel.addEventListener('change', update);
    update();
  };
  if (id === '+new') {
    show(h('h1', {}, `New ${kind.singular}`),
      resourceForm({ fields, path: kind.path, itemPath, onSaved: r => onSaved(r, 'created'), extra: schemaBox }));
    followType();
    return;
  }
  const r = await get(itemPath({ id }));
  if (page !== polling) return;
  // A route's page shows its live traffic above its configuration, a
  // service's its targets' health.
  const figures = kind.live ? live[kind.live](r.body.id) : null;
  const render = (resource, etag) => show(
    h('h1', {}, `${kind.singular[0].toUpperCase() + kind.singular.slice(1)}: ${resource.name || resource.id}`),
    takeFlash(),
    h('p', { class: 'muted' }, `Id ${resource.id}, version ${resource.version}, changed ${when(resource.updated_at)}.`),
    figures ? [figures.el, h('h2', {}, 'Configuration')] : null,
    resourceForm({ fields, path: kind.path, resource, etag, itemPath, immutable: kind.immutable,
      onSaved: res => onSaved(res, 'saved'),
      onDeleted: () => { flash = notice('ok', '', `Deleted ${resource.name || resource.id}.`); go('#/' + name); },
      onReload: () => route(),
      extra: schemaBox }),
    name === 'consumers' ? credentialsSection(resource) : null);
  render(r.body, r.etag);
  followType();
  if (figures) figures.start();
}

// secretShown shows a secret the API returns once, at creation.
function secretShown(what, secret) {
  return h('div', {},
    h('p', {}, `The ${what} is shown this once; the server keeps only its hash. Copy it now:`),
    h('code', { class: 'secret', 'data-secret': what }, secret));
}

// policySchema shows the configuration schema of a policy type, from the
// API's own description (openapi.json).
let apiDoc = null;
async function loadAPIDoc() {
  if (!apiDoc) apiDoc = (await get('/openapi.json')).body;
  return apiDoc;
}
function policySchema(type) {
  const box = h('details', { class: 'panel' }, h('summary', {}, `The ${type} configuration's fields`));
  loadAPIDoc().then(doc => {
    const schemas = doc.components.schemas;
    const want = type.split('-').map(s => s[0].toUpperCase() + s.slice(1)).join('') + 'Config';
    // "http-audit" → HTTPAuditConfig, "ip-restriction" → IPRestrictionConfig
    const name = Object.keys(schemas).find(k => k.toLowerCase() === want.toLowerCase());
    const s = name && schemas[name];
    if (!s || !s.properties) { box.append(h('p', { class: 'muted' }, 'The API describes no fields for this type.')); return; }
    box.append(table([
      ['Field', ([k]) => h('code', {}, k + ((s.required || []).includes(k) ? ' (required)' : ''))],
      ['Description', ([, v]) => v.description || v.type || ''],
    ], Object.entries(s.properties)));
  }).catch(() => box.append(h('p', { class: 'muted' }, 'The API description could not be read.')));
  return box;
}

function credentialsSection(consumer) {
  const base = `/consumers/${encodeURIComponent(consumer.id)}/credentials`;
  const section = h('section', { 'aria-labelledby': 'creds-h' }, h('h2', { id: 'creds-h' }, 'Credentials'));
  const body = h('div', {});
  section.append(body);
  const load = async message => {
    try {
      const creds = await listAll(base);
      body.replaceChildren(message || '',
        table([
          ['Type', c => c.type],
          ['Username or id', c => c.username || h('code', {}, c.id)],
          ['Created', c => when(c.created_at)],
          ['', c => canEdit() ? h('button', { type: 'button', class: 'secondary', onclick: async () => {
            try { await call('DELETE', `${base}/${encodeURIComponent(c.id)}`); load(notice('ok', '', 'Credential deleted.')); }
            catch (e) { body.prepend(errorNotice(e)); }
          } }, 'Delete') : ''],
        ], creds, 'No credentials.'),
        canEdit() ? h('h3', {}, 'New credential') : null,
        canEdit() ? resourceForm({ fields: credentialFields, path: base, itemPath: c => `${base}/${c.id}`,
          onSaved: res => load(notice('ok', 'Credential created',
            res.body.key ? secretShown('key', res.body.key) : null,
            res.body.password ? secretShown('password', res.body.password) : null)) }) : null);
    } catch (e) { body.replaceChildren(errorNotice(e)); }
  };
  load();
  return section;
}

// Specs: their body is the OpenAPI document itself, with the name in the
// query, so they get their own form.
export async function specs(id) {
  if (!id) {
    const rows = await listAll('/specs');
    show(h('h1', {}, 'Specs'), takeFlash(),
      canEdit() ? h('div', { class: 'actions' }, h('a', { class: 'button', href: newPath('specs') }, 'New spec')) : null,
      table([
        ['Name', s => h('a', { href: '#/specs/' + encodeURIComponent(s.id) }, s.name)],
        ['Title', s => s.title], ['OpenAPI', s => s.openapi], ['Operations', s => String(s.operations)],
      ], rows, 'No specs yet.'));
    return;
  }
  let spec = null, etag = null, doc = '';
  if (id !== '+new') {
    const r = await get('/specs/' + encodeURIComponent(id));
    spec = r.body; etag = r.etag;
    // The document is asked for in its own format (YAML or JSON).
    doc = (await get('/specs/' + encodeURIComponent(id) + '/document', { accept: spec.media_type || 'application/json' })).body;
    if (typeof doc !== 'string') doc = JSON.stringify(doc, null, 2);
  }
  const status = h('div', { 'aria-live': 'polite' });
  const name = h('input', { id: 'f-name', type: 'text', value: spec ? spec.name : '', disabled: !canEdit() });
  const mt = h('select', { id: 'f-media', disabled: !canEdit() },
    h('option', { value: 'application/yaml' }, 'YAML'), h('option', { value: 'application/json' }, 'JSON'));
  if (spec && spec.media_type) mt.value = spec.media_type;
  const text = h('textarea', { id: 'f-document', class: 'json', spellcheck: 'false', value: doc, disabled: !canEdit() });
  const send = async ev => {
    ev.preventDefault();
    status.replaceChildren();
    try {
      const q = '?name=' + encodeURIComponent(name.value);
      const r = spec
        ? await call('PUT', `/specs/${encodeURIComponent(spec.id)}${q}`, { body: text.value, contentType: mt.value, ifMatch: etag })
        : await call('POST', '/specs' + q, { body: text.value, contentType: mt.value });
      flash = notice('ok', '', spec ? 'Spec saved.' : 'Spec created.');
      go('#/specs/' + encodeURIComponent(r.body.id));
      if (spec) route();
    } catch (e) {
      if (!e.status) throw e;
      status.append(e.status === 412
        ? notice('warn', 'Someone else changed this spec (412)', 'Your document was not saved. Reload to see theirs.',
          h('button', { type: 'button', onclick: () => route() }, 'Reload'))
        : errorNotice(e));
    }
  };
  show(h('h1', {}, spec ? `Spec: ${spec.name}` : 'New spec'), takeFlash(), status,
    h('form', { class: 'resource', onsubmit: send },
      h('div', { class: 'field' }, h('label', { for: 'f-name' }, 'Name'), name),
      h('div', { class: 'field' }, h('label', { for: 'f-media' }, 'Format'), mt),
      h('div', { class: 'field' }, h('label', { for: 'f-document' }, 'OpenAPI document'), text),
      canEdit() ? h('div', { class: 'actions' }, h('button', { type: 'submit' }, spec ? 'Save document' : 'Create')) : null));
}

// Deployments: deploy, roll back and undeploy, each answered 202 with the
// deployment to poll, whose per-node progress is shown live until it ends.
export async function deployments(id) {
  if (id) return deployment(id);
  const [ds, revs] = await Promise.all([listAll('/deployments'), listAll('/revisions')]);
  const status = h('div', { 'aria-live': 'polite' });
  const start = async body => {
    status.replaceChildren();
    try {
      const r = await call('POST', '/deployments', { body });
      go('#/deployments/' + encodeURIComponent(r.body.id));
    } catch (e) { if (!e.status) throw e; status.append(errorNotice(e)); }
  };
  const rollbackTo = h('select', { id: 'rollback-to' },
    [...revs].sort((a, b) => b.number - a.number).map(r => h('option', { value: r.number }, `revision ${r.number}`)));
  show(h('h1', {}, 'Deployments'), takeFlash(), status,
    canEdit() ? h('div', { class: 'panel' },
      h('div', { class: 'actions' },
        h('button', { type: 'button', id: 'deploy', onclick: () => start({ action: 'deploy' }) }, 'Deploy the draft'),
        h('button', { type: 'button', class: 'secondary', id: 'undeploy', onclick: () => start({ action: 'undeploy' }) }, 'Undeploy')),
      revs.length ? h('div', { class: 'inline' },
        h('div', { class: 'field' }, h('label', { for: 'rollback-to' }, 'Roll back to'), rollbackTo),
        h('button', { type: 'button', class: 'secondary', id: 'rollback',
          onclick: () => start({ action: 'rollback', revision: Number(rollbackTo.value) }) }, 'Roll back')) : null) : null,
    deploymentTable(newestFirst(ds)));
}


async function deployment(id) {
  const mine = ++polling;
  const head = h('div', {});
  const nodes = h('div', {});
  show(h('h1', {}, 'Deployment ' + id), takeFlash(), head, h('h2', {}, 'Progress per node'), nodes,
    h('p', {}, h('a', { href: '#/deployments' }, 'All deployments')));
  for (;;) {
    const d = (await get('/deployments/' + encodeURIComponent(id))).body;
    if (mine !== polling) return;
    head.replaceChildren(h('div', { class: 'panel', id: 'deployment-state' },
      h('p', {}, `${d.action}`, d.revision ? ` of revision ${d.revision}` : '', ': ', stateBadge(d.state),
        d.reason ? ' — ' + d.reason : ''),
      d.replaced_revision !== undefined && d.revision
        ? h('p', {}, `It replaced revision ${d.replaced_revision}. `,
          h('a', { href: `#/revisions?from=${d.replaced_revision}&to=${d.revision}` }, 'What this deploy changed'))
        : null,
      h('p', { class: 'muted' }, `Started ${when(d.started_at || d.created_at)}`, d.finished_at ? `, finished ${when(d.finished_at)}` : '')));
    nodes.replaceChildren(table([
      ['Node', p => h('code', {}, p.node)], ['State', p => stateBadge(p.state)], ['Error', p => p.error || ''],
    ], d.nodes || [], 'No live data node: nodes that start later catch up.'));
    if (d.state === 'succeeded' || d.state === 'failed') return;
    await new Promise(r => setTimeout(r, 400));
    if (mine !== polling) return;
  }
}
export function stopPolling() {
  polling++;
  live.stop();
}

// Revisions, and the difference between any two (GET
// /revisions/{to}?diff_from={from}).
export async function revisions(_, query) {
  const revs = [...await listAll('/revisions')].sort((a, b) => b.number - a.number);
  const opts = sel => [h('option', { value: '0' }, '0 (empty configuration)'),
    revs.map(r => { const o = h('option', { value: r.number }, `revision ${r.number}`); if (String(r.number) === sel) o.selected = true; return o; })];
  const from = h('select', { id: 'diff-from' }, opts(query.get('from') || String(revs[1] ? revs[1].number : 0)));
  const to = h('select', { id: 'diff-to' }, opts(query.get('to') || String(revs[0] ? revs[0].number : 0)));
  const out = h('div', { id: 'diff', 'aria-live': 'polite' });
  show(h('h1', {}, 'Revisions'),
    revs.length ? h('form', { class: 'inline panel', onsubmit: ev => { ev.preventDefault(); go(`#/revisions?from=${from.value}&to=${to.value}`); } },
      h('div', { class: 'field' }, h('label', { for: 'diff-from' }, 'From'), from),
      h('div', { class: 'field' }, h('label', { for: 'diff-to' }, 'To'), to),
      h('button', { type: 'submit' }, 'Show the difference')) : null,
    out,
    h('h2', {}, 'All revisions'),
    table([
      ['Revision', r => String(r.number)],
      ['Created', r => when(r.created_at)],
      ['Contents', r => ['services', 'routes', 'consumers', 'policies', 'specs']
        .map(k => `${(r[k] || []).length} ${k}`).join(', ')],
    ], revs, 'No revision yet: deploy to make one.'));
  if (query.get('to')) await diff(out, query.get('from') || '0', query.get('to'));
}

async function diff(out, from, to) {
  let d;
  try {
    d = (await get(`/revisions/${encodeURIComponent(to)}?diff_from=${encodeURIComponent(from)}`)).body;
  } catch (e) {
    if (!e.status) throw e;
    out.replaceChildren(errorNotice(e));
    return;
  }
  const changes = d.changes || [];
  out.replaceChildren(h('h2', {}, `From revision ${d.from} to revision ${d.to}`),
    d.summary ? h('p', {}, Object.entries(d.summary).map(([k, v]) => `${v} ${k}`).join(', ')) : null,
    table([
      ['Change', c => h('span', { class: 'diff-' + c.action }, c.action)],
      ['Kind', c => c.kind],
      ['Resource', c => [c.name || '', ' ', h('code', {}, c.id)]],
      ['Fields', c => c.fields && c.fields.length ? h('ul', {}, c.fields.map(f =>
        h('li', {}, h('code', {}, f.field), ': ', fmt(f.from), ' → ', fmt(f.to)))) : ''],
    ], changes, 'The two revisions hold the same configuration.'));
}

// refused is a page the token cannot use: its title, why, and the way
// to the token's own first page.
export function refused(title, why, home) {
  show(h('h1', {}, title), notice('error', 'Not for this token', h('p', {}, why)),
    h('p', {}, h('a', { href: home }, 'Back to what this token can use')));
}

export function notFound() {
  show(h('h1', {}, 'Not found'), h('p', {}, 'The console has no such page. '), h('a', { href: '#/overview' }, 'Overview'));
}

