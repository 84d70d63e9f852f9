// Live figures: the admin API's GET /stats, asked every few seconds while a
// page that shows them is open and the tab is visible, and drawn in place:
// the text of nodes built once is updated, never the page re-rendered, so
// focus, selection and scrolling stay where the user left them.
//
// The figures are the server's. A rate is each node's requests over its
// last interval, summed (README, "Live figures"); the console computes no
// rate of its own. Counts are cumulative since a node's start or the
// deploy that added the route. A bounded ring of each charted series stays
// in memory, so that a chart still has its last minutes when its page
// comes back. Nothing here is aria-live: figures read out every few
// seconds would drown the page; a chart's figures are its accessible name.
import { h, svg, when } from './dom.js';
import { get } from './api.js';

// POLL_MS is how often a page asks; a chart spans at most SPAN_MS and at
// least MIN_SPAN_MS (so that the first seconds are not a sliver).
export const POLL_MS = 2000;
const SPAN_MS = 5 * 60 * 1000;
const MIN_SPAN_MS = 60 * 1000;
// A ring holds one span of samples (and a few spare); the rings kept are
// the MAX_SERIES recorded last.
const MAX_SAMPLES = SPAN_MS / POLL_MS + 10;
const MAX_SERIES = 50;
// A pause longer than GAP_MS between two samples (the tab was hidden, or
// another page shown) breaks the line rather than drawing across it.
const GAP_MS = 3 * POLL_MS;

const rings = new Map(); // series → [{t, v}]; the Map's order is recency

// record adds the sample (t in ms, v) to a series and returns its ring.
export function record(key, t, v) {
  let ring = rings.get(key);
  if (ring) {
    rings.delete(key); // set again below, as the most recent
  } else {
    ring = [];
    if (rings.size >= MAX_SERIES) rings.delete(rings.keys().next().value);
  }
  rings.set(key, ring);
  const last = ring[ring.length - 1];
  if (last && t < last.t) ring.length = 0; // the answering clock went back
  else if (last && t === last.t) return ring;
  ring.push({ t, v });
  let drop = 0;
  while (drop < ring.length && (ring.length - drop > MAX_SAMPLES || ring[drop].t < t - SPAN_MS)) drop++;
  if (drop) ring.splice(0, drop);
  return ring;
}

// The poll: one at a time, that of the page shown. watch starts it (and
// stops the previous one); stop ends it, as every page change does
// (pages.stopPolling). A hidden tab asks nothing and asks again, at once,
// when it is shown.
let watching = null;

export function watch(path, onAnswer, onError) {
  stop();
  const w = { path, onAnswer, onError, timer: 0, busy: false };
  watching = w;
  tick(w);
}

export function stop() {
  if (watching) clearTimeout(watching.timer);
  watching = null;
}

async function tick(w) {
  if (w !== watching || document.hidden || w.busy) return;
  clearTimeout(w.timer);
  w.busy = true;
  let body = null, err = null;
  try {
    body = (await get(w.path)).body;
  } catch (e) {
    err = e;
  }
  w.busy = false;
  if (w !== watching) return;
  if (err) {
    w.onError(err);
    // A 401 has signed the tab out (api.js); a 403, 404 or 410 (deleted
    // meanwhile) will not change by asking again. Anything else (503, the
    // network) may pass.
    if ([401, 403, 404, 405, 410].includes(err.status)) return stop();
  } else {
    w.onAnswer(body);
  }
  if (!document.hidden) w.timer = setTimeout(() => tick(w), POLL_MS);
}

document.addEventListener('visibilitychange', () => {
  if (watching && !document.hidden) tick(watching);
});

// Formats. Numbers follow the reader's locale.
const num = (n, digits) => Number(n || 0).toLocaleString(undefined, { maximumFractionDigits: digits });
export const count = n => num(n, 0);
export const rate = r => `${num(r, r < 10 ? 2 : r < 100 ? 1 : 0)} req/s`;
export const pct = (n, total) => total ? `${num(100 * n / total, 1)} %` : '';
export function duration(s) {
  if (!s) return '0 ms';
  const sig = { maximumSignificantDigits: 3 };
  return s < 1 ? `${(s * 1000).toLocaleString(undefined, sig)} ms` : `${s.toLocaleString(undefined, sig)} s`;
}
const minutes = ms => ms >= 90000 ? `${Math.round(ms / 60000)} min` : `${Math.round(ms / 1000)} s`;

// niceCeil is the chart's top: v rounded up to 1, 2 or 5 times a power of
// ten (1 at least).
function niceCeil(v) {
  if (!(v > 1)) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  return [1, 2, 5, 10].map(m => m * p).find(m => m >= v);
}

const setText = (el, text) => { if (el.textContent !== text) el.textContent = text; };
const setAttr = (el, k, v) => { if (el.getAttribute(k) !== v) el.setAttribute(k, v); };

// chart is a small line chart of one series; its accessible name holds its
// figures in words (now, peak, low, over how long).
export function chart(title, fmt, id) {
  const W = 300, H = 80;
  const area = svg('path', { class: 'chart-area', d: '' });
  const line = svg('path', { class: 'chart-line', d: '', 'vector-effect': 'non-scaling-stroke' });
  const img = svg('svg', { id, viewBox: `0 0 ${W} ${H}`, preserveAspectRatio: 'none', role: 'img',
    'aria-label': `${title}: no figures yet.` }, area, line);
  const from = h('span', {}, ''), scale = h('span', {}, '');
  const el = h('figure', { class: 'chart' }, img,
    h('figcaption', { class: 'chart-axis' }, from, scale, h('span', {}, 'now')));
  const update = ring => {
    if (!ring.length) return;
    const end = ring[ring.length - 1].t;
    const span = Math.min(SPAN_MS, Math.max(MIN_SPAN_MS, end - ring[0].t));
    const vs = ring.map(s => s.v);
    const peak = Math.max(...vs), top = niceCeil(peak);
    const x = t => (W - (end - t) / span * W).toFixed(1);
    const y = v => (H - v / top * (H - 2)).toFixed(1);
    let dl = '', da = '', seg = [];
    const flush = () => {
      if (seg.length > 1) {
        const pts = seg.map(s => `${x(s.t)},${y(s.v)}`);
        dl += 'M' + pts.join('L');
        da += `M${x(seg[0].t)},${H}L${pts.join('L')}L${x(seg[seg.length - 1].t)},${H}Z`;
      }
      seg = [];
    };
    for (const s of ring) {
      if (seg.length && s.t - seg[seg.length - 1].t > GAP_MS) flush();
      seg.push(s);
    }
    flush();
    setAttr(line, 'd', dl);
    setAttr(area, 'd', da);
    setText(from, `${minutes(span)} ago`);
    setText(scale, `top ${fmt(top)}`);
    setAttr(img, 'aria-label', `${title}: now ${fmt(vs[vs.length - 1])}` + (ring.length > 1
      ? `; over the last ${minutes(end - ring[0].t)}, peak ${fmt(peak)}, low ${fmt(Math.min(...vs))} (${ring.length} samples).`
      : '.'));
  };
  return { el, update };
}

// classBar draws responses by status class as one stacked bar; it is
// decoration (aria-hidden): the table beside it holds the figures.
function classBar() {
  const el = svg('svg', { class: 'bar', viewBox: '0 0 1000 10', preserveAspectRatio: 'none', 'aria-hidden': 'true' });
  const update = classes => {
    const total = Object.values(classes).reduce((a, b) => a + b, 0);
    let x = 0;
    el.replaceChildren(...['1xx', '2xx', '3xx', '4xx', '5xx'].filter(k => classes[k]).map(k => {
      const w = 1000 * classes[k] / total;
      const r = svg('rect', { class: 'class-' + k[0], x: x.toFixed(1), y: 0, width: w.toFixed(1), height: 10 });
      x += w;
      return r;
    }));
  };
  return { el, update };
}

// liveTable is a table whose rows are updated in place by key: a row that
// stays keeps its nodes. columns are [header, item → text, class], the
// class a string, or item → class for a cell whose class follows it.
function liveTable(columns, empty, attrs = {}) {
  const body = h('tbody', {});
  const fixed = cls => typeof cls === 'function' ? null : cls;
  const wrap = h('div', { class: 'table-wrap', hidden: true },
    h('table', attrs, h('thead', {}, h('tr', {}, columns.map(([title, , cls]) => h('th', { scope: 'col', class: fixed(cls) }, title)))), body));
  const none = h('p', { class: 'muted' }, empty);
  const rows = new Map();
  const update = (items, keyOf) => {
    const seen = new Set();
    let prev = null;
    for (const item of items) {
      const key = String(keyOf(item));
      seen.add(key);
      let tr = rows.get(key);
      if (!tr) {
        tr = h('tr', { 'data-key': key }, columns.map(([, , cls]) => h('td', { class: fixed(cls) })));
        rows.set(key, tr);
      }
      columns.forEach(([, cell, cls], i) => {
        setText(tr.cells[i], String(cell(item)));
        if (typeof cls === 'function') setAttr(tr.cells[i], 'class', cls(item));
      });
      const want = prev ? prev.nextSibling : body.firstChild;
      if (tr !== want) body.insertBefore(tr, want);
      prev = tr;
    }
    for (const [key, tr] of rows) {
      if (!seen.has(key)) { tr.remove(); rows.delete(key); }
    }
    wrap.hidden = !items.length;
    none.hidden = !!items.length;
  };
  return { el: h('div', {}, wrap, none), update };
}

// trouble is where a page says that the figures cannot be read (from
// path); it is emptied by the next answer.
function trouble(path = '/stats') {
  const el = h('div', { role: 'status' });
  const fail = err => {
    const text = err.status === 404 || err.status === 405
      ? `This server's admin API serves no live figures (GET /admin/v1${path}).`
      : err.status === 403 ? 'Your token may not read the live figures.'
        : `The live figures could not be read (${err.status || err.message}); asking again every few seconds.`;
    if (el.textContent !== text) el.replaceChildren(h('div', { class: 'notice warn' }, text));
  };
  return { el, fail, ok: () => { if (el.firstChild) el.replaceChildren(); } };
}

const answerTime = cs => Date.parse(cs.at) || Date.now();
const classRows = classes => {
  const total = Object.values(classes || {}).reduce((a, b) => a + b, 0);
  return Object.entries(classes || {}).sort().map(([k, n]) => ({ k, n, total }));
};

// overview is the overview's live panels: the cluster's requests per
// second as a chart, its responses by status class, and which nodes'
// figures are counted. nodeCell(id) makes a cell for the nodes' table that
// shows that node's part.
export function overview() {
  const now = h('div', { class: 'stat', id: 'total-rate' }, '…');
  const rates = chart('Requests per second, all nodes', rate, 'total-chart');
  const bar = classBar();
  const classes = liveTable([['Class', c => c.k], ['Responses', c => count(c.n), 'num'], ['Share', c => pct(c.n, c.total), 'num']],
    'No responses yet.', { id: 'total-classes' });
  const totals = h('p', { class: 'muted', id: 'total-requests' }, '');
  const nodesLine = h('p', { class: 'muted', id: 'live-nodes' }, '');
  const problem = trouble();
  const cells = new Map();
  const panels = [
    h('div', { class: 'panel', id: 'live-rate' }, h('div', { class: 'muted' }, 'Requests per second (all nodes)'), now, rates.el),
    h('div', { class: 'panel', id: 'live-classes' }, h('div', { class: 'muted' }, 'Responses by status class'),
      bar.el, classes.el, totals),
  ];
  const nodeCell = id => {
    const c = h('span', { class: 'live-rate' }, '…');
    cells.set(id, c);
    return c;
  };
  const onAnswer = cs => {
    problem.ok();
    const t = cs.total;
    rates.update(record('total', answerTime(cs), t.rate));
    setText(now, rate(t.rate));
    bar.update(t.classes || {});
    classes.update(classRows(t.classes), c => c.k);
    setText(totals, `${count(t.requests)} requests in all (${count(cs.unmatched.requests)} that no route took), ` +
      'counted since each node started or the route was deployed.');
    const ns = cs.nodes || [];
    const out = ns.filter(n => !n.included).map(n => `${n.node} (${n.state === 'down' ? 'down'
      : n.excluded === 'unreadable' ? 'figures unreadable' : 'no figures yet'})`);
    setText(nodesLine, `Figures from ${ns.length - out.length} of ${ns.length} nodes serving traffic` +
      (out.length ? `; left out: ${out.join(', ')}.` : '.'));
    const byNode = new Map(ns.map(n => [n.node, n]));
    for (const [id, c] of cells) {
      const n = byNode.get(id);
      setText(c, !n ? 'serves no traffic' : n.included ? `${rate(n.rate)}, ${pct(n.share, 1)} of requests`
        : n.state === 'down' ? 'left out: down'
          : n.excluded === 'unreadable' ? 'left out: figures unreadable' : 'none published yet');
    }
  };
  return {
    panels, nodesLine, problem: problem.el, nodeCell,
    start: () => {
      const ring = rings.get('total');
      if (ring) rates.update(ring); // the minutes seen before, at once
      watch('/stats', onAnswer, problem.fail);
    },
  };
}

// liveCell is a cell of a routes list showing one of a route's live
// figures (what: a key of listFigures); watchList fills every such cell
// of the page.
export const liveCell = (id, what) => h('span', { class: 'live-rate', 'data-live': what, 'data-route': id }, '…');

const listFigures = {
  rate: r => rate(r.rate),
  p99: r => r.requests ? duration(r.latency.p99_seconds) : '—',
  '4xx': r => pct((r.classes || {})['4xx'] || 0, r.requests) || '—',
  '5xx': r => pct((r.classes || {})['5xx'] || 0, r.requests) || '—',
};

export function watchList(root) {
  const problem = trouble();
  const h1 = root.querySelector('h1');
  if (h1) h1.after(problem.el);
  else root.prepend(problem.el);
  const cells = () => root.querySelectorAll('[data-live]');
  const healthCells = () => root.querySelectorAll('[data-health]');
  watch('/stats', cs => {
    problem.ok();
    const byId = new Map(cs.routes.map(r => [r.route_id, r]));
    for (const cell of cells()) {
      const r = byId.get(cell.dataset.route);
      setText(cell, r ? listFigures[cell.dataset.live](r) : '—');
      setAttr(cell, 'title', r ? `${count(r.requests)} requests` : 'Not in the revision the nodes serve: no figures');
    }
    const services = new Map((cs.services || []).map(s => [s.service_id, s]));
    for (const cell of healthCells()) showHealth(cell, services.get(cell.dataset.health));
  }, err => {
    problem.fail(err);
    for (const cell of [...cells(), ...healthCells()]) setText(cell, '—');
  });
}

// Targets' health (GET /stats's services, GET /services/{id}/health):
// each state in words, its colour a class beside them, never alone.

// healthCell is a cell of a services list showing a service's state, or
// with index (and url) one target's; watchList fills it.
export const healthCell = (id, index, url) => h('span', { class: 'health', 'data-health': id,
  'data-target': index === undefined ? null : String(index), 'data-url': url || null }, '…');

const healthClass = state => `health health-${state || 'unknown'}`;

// lastFailure is the latest failure any node saw of a target.
const lastFailure = tv => (tv.nodes || []).map(n => n.last_failure).filter(Boolean)
  .sort((a, b) => String(b.at).localeCompare(String(a.at)))[0];

function targetWords(tv) {
  const n = (tv.nodes || []).length;
  switch (tv.state) {
    case 'healthy': return n > 1 ? `healthy on all ${n} nodes` : 'healthy';
    case 'disabled': return 'disabled (weight 0)';
    case 'mixed': return `mixed: in rotation on ${tv.healthy_nodes} of ${n} nodes`;
    default: {
      const f = lastFailure(tv);
      return `${tv.state}${f ? ': ' + f.cause : ''}`;
    }
  }
}

const serviceWords = {
  healthy: 'healthy',
  degraded: 'degraded: a target is out of rotation',
  unhealthy: 'unhealthy: a node has no target in rotation (it answers 503)',
  unknown: 'unknown: no node serving traffic reports it (deploy it)',
};

function showHealth(cell, view) {
  let text = 'unknown: not in the revision the nodes serve', state = 'unknown';
  if (view && cell.dataset.target === undefined) {
    state = view.state;
    text = serviceWords[state] || state;
  } else if (view) {
    const tv = view.targets.find(t => t.url === cell.dataset.url) || view.targets[Number(cell.dataset.target)];
    if (tv) {
      state = tv.state;
      text = targetWords(tv);
    }
  }
  setText(cell, text);
  setAttr(cell, 'class', healthClass(state));
}

// service is a service page's live section: each target's health, by
// node, asked every few seconds.
export function service(id) {
  const path = `/services/${encodeURIComponent(id)}/health`;
  const problem = trouble(path);
  const state = h('span', { class: healthClass('unknown'), id: 'service-health-state' }, '…');
  const checks = h('span', { class: 'muted' }, '');
  const targets = liveTable([
    ['Target', t => t.url],
    ['Health', targetWords, t => healthClass(t.state)],
    ['In rotation on', t => `${t.healthy_nodes} of ${(t.nodes || []).length} nodes`, 'num'],
    ['Since', t => when((t.nodes || []).map(n => n.since).sort().pop())],
    ['Last failure', t => { const f = lastFailure(t); return f ? `${f.cause} (${f.check} check, ${when(f.at)})` : 'none'; }],
    ['By node', t => (t.nodes || []).map(n => `${n.node}: ${n.state}`).join(', ')],
  ], 'No node serving traffic reports this service yet: deploy it.', { id: 'service-health' });
  const el = h('section', { 'aria-labelledby': 'health-h', class: 'live' },
    h('h2', { id: 'health-h' }, 'Target health'),
    problem.el,
    h('p', {}, 'This service: ', state, ' ', checks),
    targets.el);
  const onAnswer = v => {
    problem.ok();
    setText(state, serviceWords[v.state] || v.state);
    setAttr(state, 'class', healthClass(v.state));
    setText(checks, `(${v.active_checks ? 'active checks' : 'no active checks'}, ${v.passive_checks ? 'passive health on' : 'passive health off'}; ` +
      `seen by ${v.nodes.length ? v.nodes.join(', ') : 'no node'}.)`);
    targets.update(v.targets, t => t.url);
  };
  return { el, start: () => watch(path, onAnswer, problem.fail) };
}

// route is a route page's live section: its rate as a chart, its latency,
// its responses by status code, and the response audit's findings of it
// where there are any: asked when the route's requests changed, and every
// FINDINGS_EVERY answers (a cluster's findings arrive up to a publishing
// interval late).
const FINDINGS_EVERY = 5;

export function route(id) {
  const now = h('div', { class: 'stat', id: 'route-rate' }, '…');
  const rates = chart('Requests per second of this route', rate, 'route-chart');
  const lat = {};
  const latency = h('div', { class: 'table-wrap' }, h('table', { id: 'route-latency' }, h('tbody', {},
    [['p50', 'p50_seconds'], ['p90', 'p90_seconds'], ['p99', 'p99_seconds'], ['mean', 'mean_seconds']].map(([label, k]) =>
      h('tr', {}, h('th', { scope: 'row' }, label), lat[k] = h('td', { class: 'num' }, '…'))))));
  const requests = h('div', { class: 'stat', id: 'route-requests' }, '…');
  const bar = classBar();
  const codes = liveTable([['Status', c => c.code], ['Responses', c => count(c.n), 'num'], ['Share', c => pct(c.n, c.total), 'num']],
    'No responses yet.', { id: 'route-codes' });
  const note = h('p', { class: 'muted', id: 'route-live-note' }, '');
  const problem = trouble();
  const findings = liveTable([
    ['Severity', f => f.severity], ['Rule', f => f.rule], ['Operation', f => f.operation || ''],
    ['Status', f => f.status], ['Count', f => count(f.count), 'num'], ['Last seen', f => new Date(f.last_seen).toLocaleString()],
    ['Example', f => f.sample ? `${f.sample.method} ${f.sample.path}${f.sample.detail ? ': ' + f.sample.detail : ''}` : ''],
  ], '', { id: 'route-findings-table', class: 'findings' });
  const findingsBox = h('section', { id: 'route-findings', 'aria-labelledby': 'findings-h', hidden: true },
    h('h2', { id: 'findings-h' }, 'Conformance findings'),
    h('p', { class: 'muted' }, 'What the response audit found in this route\'s answers (GET /admin/v1/conformance).'),
    findings.el);
  const el = h('section', { 'aria-labelledby': 'traffic-h', class: 'live' },
    h('h2', { id: 'traffic-h' }, 'Live traffic'),
    problem.el,
    h('div', { class: 'grid' },
      h('div', { class: 'panel' }, h('div', { class: 'muted' }, 'Requests per second'), now, rates.el),
      h('div', { class: 'panel' }, h('div', { class: 'muted' }, 'Responses by status code'), requests, bar.el, codes.el),
      h('div', { class: 'panel' }, h('div', { class: 'muted' }, 'Latency'), latency)),
    note, findingsBox);

  let answers = 0, seen = -1;
  const loadFindings = async () => {
    try {
      const page = (await get(`/conformance?route=${encodeURIComponent(id)}&limit=100`)).body;
      const data = page.data || [];
      findings.update(data, f => `${f.rule} ${f.operation} ${f.status}`);
      findingsBox.hidden = !data.length;
    } catch (e) {
      if (!e.status) throw e;
      findingsBox.hidden = true; // the report is an extra: its absence is no error of the page
    }
  };
  const onAnswer = cs => {
    problem.ok();
    const at = answerTime(cs);
    record('total', at, cs.total.rate);
    const r = cs.routes.find(x => x.route_id === id);
    const n = r ? r.requests : 0;
    if (answers++ % FINDINGS_EVERY === 0 || n !== seen) loadFindings();
    seen = n;
    if (!r) {
      setText(now, '—');
      setText(requests, '—');
      setText(note, 'No figures: this route is not in the revision the nodes serve (deploy it), or no node serving it is live.');
      return;
    }
    rates.update(record('route:' + id, at, r.rate));
    setText(now, rate(r.rate));
    setText(requests, `${count(r.requests)} requests`);
    bar.update(r.classes || {});
    // A route keeps counts of its first 16 status codes; the others count
    // in their class only, shown as such.
    const rows = Object.entries(r.codes || {}).map(([code, n]) => ({ code, n, total: r.requests }));
    for (const [k, n] of Object.entries(r.classes || {})) {
      const known = rows.filter(c => c.code[0] === k[0]).reduce((a, c) => a + c.n, 0);
      if (n > known) rows.push({ code: `other ${k}`, n: n - known, total: r.requests });
    }
    codes.update(rows.sort((a, b) => a.code.localeCompare(b.code)), c => c.code);
    for (const [k, td] of Object.entries(lat)) setText(td, r.requests ? duration(r.latency[k]) : '—');
    setText(note, `Counted since the route was deployed or its node started, on ${(r.nodes || []).map(n =>
      `${n.node} (${pct(n.share, 1)})`).join(', ') || 'no node'}.`);
  };
  return {
    el,
    start: () => {
      const ring = rings.get('route:' + id);
      if (ring) rates.update(ring);
      watch(`/stats?route_id=${encodeURIComponent(id)}`, onAnswer, problem.fail);
    },
  };
}
