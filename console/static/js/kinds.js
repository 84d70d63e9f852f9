// What the console shows and edits of each kind: the collection's path,
// the list's columns and the editor's fields. A new kind, or a new
// column, is one entry. live: the kind has live figures (GET /stats), in
// its list's cells made by liveCell or healthCell, and on each one's page
// the section live.js's function of that name makes.
import { h } from './dom.js';
import { liveCell, healthCell } from './live.js';

// newPath is the page creating a resource of a kind: "+new", which no id
// can be (ids start with a letter or a digit).
export const newPath = kind => `#/${kind}/+new`;
const link = (kind, r, text) => h('a', { href: `#/${kind}/${encodeURIComponent(r.id)}` }, text || r.name || r.id);
const list = v => (v || []).join(', ');


const idField = { name: 'id', label: 'Id', createOnly: true, help: 'Optional: generated if empty. Cannot change later.' };
const tags = { name: 'tags', type: 'list', label: 'Tags', help: 'Comma-separated.' };

export const kinds = {
  routes: {
    title: 'Routes', singular: 'route', path: '/routes',
    columns: ctx => [
      ['Name', r => link('routes', r)],
      ['Match', r => [list(r.methods) || 'any method', ' ', list(r.hosts) ? list(r.hosts) + ' ' : '', h('code', {}, list(r.paths) || '/')]],
      ['Service', r => ctx.services[r.service_id] ? link('services', ctx.services[r.service_id]) : r.service_id],
      ['Policies', r => list(r.policies)],
      ['Live rate', r => liveCell(r.id, 'rate')],
      ['Latency p99', r => liveCell(r.id, 'p99')],
      ['4xx', r => liveCell(r.id, '4xx')],
      ['5xx', r => liveCell(r.id, '5xx')],
    ],
    needs: ['services'],
    live: 'route',
    fields: ctx => [
      idField,
      { name: 'name', label: 'Name' },
      { name: 'service_id', label: 'Service', type: 'select', required: true,
        options: Object.values(ctx.services).map(s => [s.id, s.name + ' (' + s.id + ')']) },
      { name: 'paths', type: 'list', label: 'Paths', help: 'Comma-separated path patterns, such as /api/{id}.' },
      { name: 'hosts', type: 'list', label: 'Hosts', help: 'Comma-separated; empty matches any host.' },
      { name: 'methods', type: 'list', label: 'Methods', help: 'Comma-separated; empty matches any method.' },
      { name: 'strip_path', type: 'bool', label: 'Strip the matched path before forwarding' },
      { name: 'priority', type: 'number', label: 'Priority' },
      { name: 'max_body_bytes', type: 'number', label: 'Largest request body (bytes)' },
      { name: 'policies', type: 'list', label: 'Policies', help: 'Comma-separated policy ids, in order.' },
      { name: 'upgrades', type: 'list', label: 'Upgrades', help: 'Such as websocket.' },
      tags,
    ],
  },
  services: {
    title: 'Services', singular: 'service', path: '/services',
    columns: () => [
      ['Name', r => link('services', r)],
      ['Targets', r => h('ul', { class: 'targets' }, (r.targets && r.targets.length ? r.targets : [{ url: r.url || '' }]).map((t, i) =>
        h('li', {}, h('code', {}, t.url), t.weight ? ` weight ${t.weight}` : '', ' ', healthCell(r.id, i, t.url))))],
      ['Health', r => [healthCell(r.id), h('br'), r.health_check
        ? [`active ${r.health_check.type || 'http'} check`,
          r.health_check.type === 'grpc'
            ? ` of ${r.health_check.grpc_service ? 'service ' + r.health_check.grpc_service : 'the server as a whole'}`
            : r.health_check.path ? ` of ${r.health_check.path}` : '',
          ` every ${r.health_check.interval_ms || 10000} ms`].join('')
        : 'passive only (requests that fail)']],
      ['Warnings', r => (r.warnings || []).join(' ')],
    ],
    live: 'service',
    fields: () => [
      idField,
      { name: 'name', label: 'Name', required: true },
      { name: 'url', label: 'Upstream URL', help: 'One target; or give targets instead.' },
      { name: 'targets', type: 'json', label: 'Targets', help: 'JSON: [{"url": "http://10.0.0.1:8080", "weight": 1}].' },
      { name: 'connect_timeout_ms', type: 'number', label: 'Connect timeout (ms)' },
      { name: 'read_timeout_ms', type: 'number', label: 'Read timeout (ms)' },
      { name: 'retries', type: 'number', label: 'Retries' },
      { name: 'health_check', type: 'json', label: 'Active health check', help: 'JSON: {"path": "/healthz", "interval_ms": 10000}.' },
      { name: 'tls', type: 'json', label: 'Upstream TLS', help: 'JSON; a client key is write-only and never shown.' },
      { name: 'policies', type: 'list', label: 'Policies', help: 'Comma-separated policy ids.' },
      tags,
    ],
  },
  consumers: {
    title: 'Consumers', singular: 'consumer', path: '/consumers',
    columns: () => [
      ['Name', r => link('consumers', r)],
      ['Groups', r => list(r.groups)],
      ['Id', r => h('code', {}, r.id)],
    ],
    fields: () => [
      idField,
      { name: 'name', label: 'Name', required: true },
      { name: 'groups', type: 'list', label: 'Groups', help: 'Comma-separated; acl policies allow or deny by group.' },
      tags,
    ],
  },
  policies: {
    title: 'Policies', singular: 'policy', path: '/policies',
    columns: () => [
      ['Name', r => link('policies', r)],
      ['Type', r => r.type],
      ['Global', r => r.global ? 'yes' : ''],
    ],
    // The types are the API's own (its openapi.json's Policy type enum),
    // so a type the server gains is offered without a console change.
    needs: ['policyTypes'],
    fields: ctx => [
      idField,
      { name: 'name', label: 'Name', required: true },
      { name: 'type', label: 'Type', type: 'select', options: ctx.policyTypes, required: true, createOnly: false },
      { name: 'global', type: 'bool', label: 'Global (applies to every route)' },
      { name: 'config', type: 'json', label: 'Configuration (JSON)', help: 'Errors of the type\'s schema are shown here, each at its field.' },
      tags,
    ],
  },
  tokens: {
    title: 'Admin tokens', singular: 'token', path: '/tokens', immutable: true,
    columns: () => [
      ['Name', r => link('tokens', r, r.name || r.id)],
      ['Role', r => r.role],
      ['Consumer', r => r.consumer_id || ''],
      ['Expires', r => r.expires_at || 'never'],
    ],
    fields: () => [
      idField,
      { name: 'name', label: 'Name' },
      { name: 'role', label: 'Role', type: 'select', options: ['admin', 'read-only'], default: 'admin' },
      { name: 'consumer_id', label: 'Limited to consumer', help: 'Optional consumer id.' },
      { name: 'expires_at', label: 'Expires at', help: 'Optional RFC 3339 time, such as 2027-01-01T00:00:00Z.' },
      tags,
    ],
  },
};

export const credentialFields = [
  { name: 'type', label: 'Type', type: 'select', options: ['key-auth', 'basic-auth'], required: true, default: 'key-auth' },
  { name: 'key', label: 'Key (key-auth)', help: 'Optional: generated if empty, and shown once.' },
  { name: 'username', label: 'Username (basic-auth)' },
  { name: 'password', label: 'Password (basic-auth)', secret: true, help: 'Stored only as a hash.' },
];
