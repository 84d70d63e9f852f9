// The resource editor: one form for every kind, showing the API's own
// rules. A change is sent as a merge patch of the fields that changed,
// with If-Match naming the version read; a 412 fetches the current
// version and shows what changed; a 400 or 422 shows each error beside
// the field it names (errors[].field); other refusals are explained.
import { h, notice } from './dom.js';
import { call, explain, fieldChanges, canEdit } from './api.js';

// Field types: text, number, bool, list (comma-separated strings), json,
// select (options), textarea. createOnly fields are set once.
function input(f, value, disabled) {
  const id = 'f-' + f.name;
  const common = { id, name: f.name, disabled, 'aria-describedby': `help-${f.name} err-${f.name}` };
  switch (f.type) {
    case 'bool':
      return h('input', { ...common, type: 'checkbox', checked: !!value });
    case 'number':
      return h('input', { ...common, type: 'number', value: value ?? '' });
    case 'list':
      return h('input', { ...common, type: 'text', value: (value || []).join(', ') });
    case 'json':
      return h('textarea', { ...common, class: 'json', spellcheck: 'false',
        value: value === undefined ? '' : JSON.stringify(value, null, 2) });
    case 'textarea':
      return h('textarea', { ...common, class: 'json', spellcheck: 'false', value: value ?? '' });
    case 'select': {
      // A value the options lack (a type this console was not told of)
      // is still offered, so that leaving the select alone keeps it.
      const options = f.options || [];
      const known = options.some(o => (Array.isArray(o) ? o[0] : o) === value);
      return h('select', common,
        h('option', { value: '' }, f.placeholder || '(choose)'),
        [...options, ...(value && !known ? [value] : [])].map(o => {
          const [v, label] = Array.isArray(o) ? o : [o, o];
          const opt = h('option', { value: v }, label);
          if (v === value) opt.selected = true;
          return opt;
        }));
    }
    default:
      return h('input', { ...common, type: f.secret ? 'password' : 'text', value: value ?? '', autocomplete: 'off' });
  }
}

// read returns a field's value from its input, undefined for empty, or
// throws a message for the field.
function read(f, el) {
  switch (f.type) {
    case 'bool': return el.checked;
    case 'number': {
      if (el.value.trim() === '') return undefined;
      const n = Number(el.value);
      if (!Number.isFinite(n)) throw 'is not a number';
      return n;
    }
    case 'list': {
      const items = el.value.split(',').map(s => s.trim()).filter(Boolean);
      return items.length ? items : undefined;
    }
    case 'json':
      if (el.value.trim() === '') return undefined;
      try { return JSON.parse(el.value); } catch (e) { throw 'is not valid JSON: ' + e.message; }
    default:
      return el.value === '' ? undefined : el.value;
  }
}

const same = (a, b) => JSON.stringify(a ?? null) === JSON.stringify(b ?? null);

// topField is the form field an API error's field belongs to:
// "targets[0].url" → "targets", "config.limit" → "config".
const topField = field => String(field || '').split(/[.[/]/)[0];

// resourceForm renders the editor. opts: fields; resource and etag when
// editing (absent to create); path, the collection's API path; itemPath
// (resource) → the item's; onSaved(result); onDeleted(); extra nodes
// shown under the fields (a policy's schema).
export function resourceForm(opts) {
  const { fields, resource, path } = opts;
  const editing = !!resource;
  const writable = canEdit();
  const status = h('div', { 'aria-live': 'polite' });
  const errs = {};
  const wrappers = {};
  const inputs = {};
  const rows = fields.filter(f => !(editing && f.createOnly && resource[f.name] === undefined)).map(f => {
    const disabled = !writable || (editing && (f.createOnly || opts.immutable));
    const el = input(f, editing ? resource[f.name] : f.default, disabled);
    inputs[f.name] = el;
    errs[f.name] = h('p', { class: 'field-error', id: 'err-' + f.name, hidden: true });
    wrappers[f.name] = h('div', { class: 'field', 'data-field': f.name },
      f.type === 'bool'
        ? h('label', { for: el.id }, el, ' ', f.label || f.name)
        : [h('label', { for: el.id }, f.label || f.name, f.required ? ' (required)' : ''), el],
      h('span', { class: 'help', id: 'help-' + f.name }, f.help || ''),
      errs[f.name]);
    return wrappers[f.name];
  });

  const clear = () => {
    status.replaceChildren();
    for (const name of Object.keys(errs)) {
      errs[name].hidden = true;
      errs[name].replaceChildren();
      wrappers[name].classList.remove('invalid');
      inputs[name].removeAttribute('aria-invalid');
    }
  };
  // fieldError shows a message beside its field; it returns false when
  // the form has no such field.
  const fieldError = (field, message) => {
    const name = topField(field);
    if (!errs[name]) return false;
    errs[name].hidden = false;
    errs[name].append(h('span', { class: 'field-message' }, h('code', {}, field), ' ', message), h('br'));
    wrappers[name].classList.add('invalid');
    inputs[name].setAttribute('aria-invalid', 'true');
    return true;
  };

  // showError explains a refusal of a save, or of a delete (deleting).
  const showError = async (err, deleting) => {
    if (err.status === 400 || err.status === 422) {
      const stray = err.fieldErrors.filter(e => !fieldError(e.field, e.message));
      status.append(notice('error',
        err.status === 400 ? 'The server could not take this change (400)' : 'The server refused this change (422)',
        err.problem.detail || '',
        stray.length ? h('ul', {}, stray.map(e => h('li', {}, h('code', {}, e.field), ' ', e.message))) : null,
        err.fieldErrors.length > stray.length ? h('p', {}, 'Each error is shown beside its field.') : null));
      const first = err.fieldErrors.map(e => inputs[topField(e.field)]).find(Boolean);
      if (first) first.focus();
      return;
    }
    if (err.status === 412 && editing) {
      await showConflict(deleting ? null : sent, deleting);
      return;
    }
    status.append(notice('error', `${err.status} ${err.problem.title || ''}`, explain(err)));
  };

  // showConflict fetches the current version and lists what changed
  // since the one this form was opened with.
  const showConflict = async (mine, deleting) => {
    let current;
    try {
      current = (await call('GET', opts.itemPath(resource))).body;
    } catch (e) {
      status.append(notice('error', 'Someone else changed or deleted this', explain(e)));
      return;
    }
    const changes = fieldChanges(resource, current);
    status.append(notice('warn', 'Someone else changed this (412 Precondition Failed)',
      h('p', {}, `You opened version ${resource.version}; the server now holds version ${current.version}. ` +
        (deleting ? 'It was not deleted: look at their change, then delete again if you still mean to. '
          : 'Your change was not applied, so theirs is not lost. ') + 'What they changed:'),
      changes.length
        ? h('div', { class: 'table-wrap' }, h('table', { class: 'conflict' },
          h('thead', {}, h('tr', {}, h('th', {}, 'Field'), h('th', {}, 'When you opened it'), h('th', {}, 'Now'))),
          h('tbody', {}, changes.map(c => h('tr', {},
            h('td', {}, h('code', {}, c.field)), h('td', {}, fmt(c.from)), h('td', {}, fmt(c.to)))))))
        : h('p', {}, deleting ? 'No field differs (only its version).'
          : 'No field differs (only its version): saving again applies your change.'),
      mine && Object.keys(mine).length
        ? h('p', {}, 'Your change, not applied: ', Object.entries(mine).map(([k, v], i) =>
          [i ? ', ' : '', h('code', {}, k), ' → ', fmt(v === null ? undefined : v)]))
        : null,
      h('div', { class: 'actions' },
        h('button', { type: 'button', onclick: () => opts.onReload(current) }, 'Load the current version'))));
  };

  let sent = null; // the last merge patch sent, to show beside a 412
  const save = async ev => {
    ev.preventDefault();
    clear();
    const values = {};
    let bad = false;
    for (const f of fields) {
      if (!inputs[f.name] || inputs[f.name].disabled) continue;
      try {
        values[f.name] = read(f, inputs[f.name]);
      } catch (msg) {
        fieldError(f.name, msg);
        bad = true;
      }
    }
    if (bad) {
      status.append(notice('error', 'Fix the fields marked first', 'Nothing was sent.'));
      return;
    }
    try {
      let res;
      if (editing) {
        const patch = {};
        for (const [k, v] of Object.entries(values)) {
          const before = fields.find(f => f.name === k).type === 'bool' ? !!resource[k] : resource[k];
          if (!same(before, v)) patch[k] = v === undefined ? null : v;
        }
        if (!Object.keys(patch).length) {
          status.append(notice('ok', '', 'Nothing changed.'));
          return;
        }
        sent = patch;
        res = await call('PATCH', opts.itemPath(resource), { body: patch, ifMatch: opts.etag,
          contentType: 'application/merge-patch+json' });
      } else {
        const body = opts.body ? opts.body(values) : Object.fromEntries(Object.entries(values).filter(([, v]) => v !== undefined));
        res = await call('POST', path, { body });
      }
      opts.onSaved(res);
    } catch (err) {
      if (!err.status) throw err;
      await showError(err);
    }
  };

  // Deleting takes a second click on the same button: no dialog.
  const del = async ev => {
    clear();
    const btn = ev.currentTarget;
    if (!btn.dataset.armed) {
      btn.dataset.armed = '1';
      btn.textContent = 'Confirm delete';
      status.append(notice('warn', '', 'Press "Confirm delete" to delete. The data plane keeps it until the next deployment.'));
      return;
    }
    try {
      await call('DELETE', opts.itemPath(resource), { ifMatch: opts.etag });
      opts.onDeleted();
    } catch (err) {
      if (!err.status) throw err;
      await showError(err, true);
    }
  };

  const form = h('form', { class: 'resource', novalidate: true, onsubmit: save },
    rows, opts.extra || null,
    writable
      ? h('div', { class: 'actions' },
        editing && opts.immutable ? null : h('button', { type: 'submit' }, editing ? 'Save changes' : 'Create'),
        editing && opts.deletable !== false ? h('button', { type: 'button', class: 'danger', onclick: del }, 'Delete') : null)
      : h('p', { class: 'muted' }, 'Read-only: your token (or this node) does not take changes.'));
  return h('div', {}, status, form);
}

export function fmt(v) {
  if (v === undefined) return h('span', { class: 'muted' }, '(absent)');
  if (v === '(secret)') return h('span', { class: 'muted' }, '(secret, not shown)');
  return h('code', {}, JSON.stringify(v));
}

// Errors outside a form (a list that failed to load, an action refused).
export function errorNotice(err) {
  if (!err.status) return notice('error', 'The console failed', String(err.message || err));
  return notice('error', `${err.status} ${err.problem.title || ''}`, explain(err),
    err.fieldErrors.length ? h('ul', {}, err.fieldErrors.map(e => h('li', {}, h('code', {}, e.field), ' ', e.message))) : null);
}

