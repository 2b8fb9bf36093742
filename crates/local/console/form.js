// The request tab's form: built from the worker's input schema (JSON Schema, as schemars emits
// it), one field per property, with its type, default, description, choices and bounds; nested
// objects as groups and arrays as lists. It holds no validator of its own: the console checks
// what the form makes with the endpoint's check (the code /run runs) and `showErrors` puts each
// violation next to its field. Everything from the schema goes in as text (textContent).
'use strict';

// eslint-disable-next-line no-unused-vars
const SchemaForm = (() => {
  let root = null; // the input schema
  let onChange = () => {};
  let reader = null; // reads the form's value (undefined: left out)
  const slots = new Map(); // path -> the element that shows that field's error

  const el = (tag, props = {}, ...children) => {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(props)) {
      if (k === 'text') e.textContent = v;
      else if (k === 'class') e.className = v;
      else if (k.startsWith('data-')) e.setAttribute(k, v);
      else e[k] = v;
    }
    e.append(...children);
    return e;
  };

  // `#/$defs/Name` in the schema document; anything else is left as it is.
  function resolve(schema, depth = 0) {
    if (!schema || typeof schema !== 'object') return {};
    if (typeof schema.$ref === 'string' && schema.$ref.startsWith('#') && depth < 32) {
      let target = root;
      for (const part of schema.$ref.slice(1).split('/').filter(Boolean)) target = target?.[part.replace(/~1/g, '/').replace(/~0/g, '~')];
      const { $ref, ...rest } = schema;
      return { ...resolve(target, depth + 1), ...rest };
    }
    return schema;
  }

  // The schema without its `null` alternative (an `Option<T>`), and whether it had one.
  function unNull(schema) {
    schema = resolve(schema);
    if (Array.isArray(schema.type) && schema.type.includes('null')) {
      const types = schema.type.filter((t) => t !== 'null');
      return [{ ...schema, type: types.length === 1 ? types[0] : types }, true];
    }
    for (const key of ['anyOf', 'oneOf']) {
      const alts = schema[key];
      if (Array.isArray(alts) && alts.length === 2) {
        const rest = alts.filter((a) => resolve(a).type !== 'null');
        if (rest.length === 1) {
          const { [key]: _, ...outer } = schema;
          return [{ ...resolve(rest[0]), ...outer }, true];
        }
      }
    }
    return [schema, false];
  }

  // The choices of an enum: `enum`, or `oneOf`/`anyOf` whose variants are all constants.
  function choices(schema) {
    if (Array.isArray(schema.enum)) return schema.enum.map((v) => ({ value: v }));
    for (const key of ['oneOf', 'anyOf']) {
      const alts = (schema[key] || []).map((a) => resolve(a));
      if (alts.length && alts.every((a) => 'const' in a)) return alts.map((a) => ({ value: a.const, description: a.description }));
      if (alts.length && alts.every((a) => Array.isArray(a.enum))) return alts.flatMap((a) => a.enum.map((v) => ({ value: v, description: a.description })));
    }
    return null;
  }

  const typeOf = (s) => (Array.isArray(s.type) ? s.type.join(' | ') : s.type) || (choices(s) ? 'choice' : 'any');

  function bounds(s) {
    const lo = s.minimum ?? (s.exclusiveMinimum !== undefined ? `> ${s.exclusiveMinimum}` : undefined);
    const hi = s.maximum ?? (s.exclusiveMaximum !== undefined ? `< ${s.exclusiveMaximum}` : undefined);
    if (s.minimum !== undefined && s.maximum !== undefined) return `${s.minimum} to ${s.maximum}`;
    if (lo !== undefined && hi !== undefined) return `${lo}, ${hi}`;
    if (lo !== undefined) return typeof lo === 'number' ? `≥ ${lo}` : lo;
    if (hi !== undefined) return typeof hi === 'number' ? `≤ ${hi}` : hi;
    return '';
  }

  // The label of a field: its name, type, bounds, required mark, default and description.
  function label(name, s, required) {
    const head = el('span', { class: 'field-head' }, el('span', { class: 'field-name', text: name }));
    const facts = [typeOf(s)];
    if (bounds(s)) facts.push(bounds(s));
    if (s.minLength !== undefined || s.maxLength !== undefined) facts.push(`length ${s.minLength ?? 0} to ${s.maxLength ?? '…'}`);
    if (required) facts.push('required');
    if (s.default !== undefined) facts.push('default ' + JSON.stringify(s.default));
    head.append(el('span', { class: 'field-type muted', text: facts.join(' · ') }));
    const parts = [head];
    if (s.description) parts.push(el('span', { class: 'field-help muted', text: s.description }));
    return parts;
  }

  function errorSlot(path) {
    const slot = el('span', { class: 'field-error error', role: 'alert', 'data-path': path });
    slots.set(path, slot);
    return slot;
  }

  // One field for `schema` at `path`, filled with `value`; returns [element, read()].
  function field(name, schema, value, path, required) {
    const [s, nullable] = unNull(schema);
    const optional = !required || nullable;
    const list = choices(s);
    const type = Array.isArray(s.type) ? null : s.type;
    const wrap = (control, extra = []) =>
      el('label', { class: 'field', 'data-path': path }, ...label(name, s, !optional), control, ...extra, errorSlot(path));

    if (list) {
      const select = el('select', { name: path });
      if (optional) select.append(el('option', { value: '', text: s.default !== undefined ? `(default: ${JSON.stringify(s.default)})` : '(none)' }));
      list.forEach((c, i) => select.append(el('option', { value: String(i), text: typeof c.value === 'string' ? c.value : JSON.stringify(c.value), title: c.description || '' })));
      const at = list.findIndex((c) => JSON.stringify(c.value) === JSON.stringify(value));
      select.value = at >= 0 ? String(at) : optional ? '' : '0';
      return [wrap(select), () => (select.value === '' ? undefined : list[Number(select.value)].value)];
    }
    if (type === 'boolean') {
      const box = el('input', { type: 'checkbox', name: path, checked: value === undefined ? s.default === true : value === true });
      return [wrap(box), () => (optional && box.checked === (s.default === true) && value === undefined ? undefined : box.checked)];
    }
    if (type === 'integer' || type === 'number') {
      const input = el('input', { type: 'number', name: path, step: type === 'integer' ? '1' : 'any' });
      if (s.minimum !== undefined) input.min = s.minimum;
      if (s.maximum !== undefined) input.max = s.maximum;
      if (s.default !== undefined) input.placeholder = String(s.default);
      if (typeof value === 'number') input.value = String(value);
      if (!optional) input.required = true;
      return [wrap(input), () => (input.value === '' ? undefined : Number(input.value))];
    }
    if (type === 'string') {
      const input = el('input', { type: 'text', name: path });
      if (s.default !== undefined) input.placeholder = String(s.default);
      if (typeof value === 'string') input.value = value;
      if (!optional) input.required = true;
      return [wrap(input), () => (input.value === '' && optional ? undefined : input.value)];
    }
    if (type === 'object' && s.properties) {
      const [group, read] = object(s, value, path);
      const box = el('fieldset', { class: 'field group', 'data-path': path }, el('legend', {}, ...label(name, s, !optional)), group, errorSlot(path));
      return [box, () => {
        const v = read();
        return optional && v && Object.keys(v).length === 0 && value === undefined ? undefined : v;
      }];
    }
    if (type === 'array' && s.items && !Array.isArray(s.items)) return array(name, s, value, path, optional);
    // Anything else (a free-form value, a union): JSON in a small editor.
    const text = el('textarea', { name: path, rows: 2, spellcheck: false });
    if (value !== undefined) text.value = JSON.stringify(value);
    return [wrap(text), () => {
      if (text.value.trim() === '') return undefined;
      try {
        return JSON.parse(text.value);
      } catch {
        return text.value;
      }
    }];
  }

  // The properties of an object schema, the required ones first, each group in the schema's
  // order; returns [element, read()].
  function object(s, value, path) {
    const box = el('div', { class: 'fields' });
    const readers = [];
    const required = new Set(s.required || []);
    const current = value && typeof value === 'object' && !Array.isArray(value) ? value : {};
    const entries = Object.entries(s.properties || {});
    const ordered = [...entries.filter(([n]) => required.has(n)), ...entries.filter(([n]) => !required.has(n))];
    for (const [name, sub] of ordered) {
      const [e, read] = field(name, sub, current[name], `${path}.${name}`, required.has(name));
      box.append(e);
      readers.push([name, read]);
    }
    const known = new Set(Object.keys(s.properties || {}));
    return [box, () => {
      const out = {};
      // Keys the form has no field for (the schema allows more) stay as they are.
      for (const [k, v] of Object.entries(current)) if (!known.has(k)) out[k] = v;
      for (const [name, read] of readers) {
        const v = read();
        if (v !== undefined) out[name] = v;
      }
      return out;
    }];
  }

  // A list: one field per item, Remove beside each, Add below; returns [element, read()].
  function array(name, s, value, path, optional) {
    const items = Array.isArray(value) ? [...value] : [];
    const list = el('ol', { class: 'items' });
    const box = el('fieldset', { class: 'field group', 'data-path': path }, el('legend', {}, ...label(name, s, !optional)), list, errorSlot(path));
    let readers = [];
    const render = () => {
      list.replaceChildren();
      readers = items.map((item, i) => {
        const [e, read] = field(`[${i}]`, s.items, item, `${path}[${i}]`, true);
        const remove = el('button', { type: 'button', class: 'quiet', text: 'Remove' });
        remove.addEventListener('click', () => {
          items.splice(0, items.length, ...readers.map((r) => r()));
          items.splice(i, 1);
          render();
          onChange();
        });
        list.append(el('li', {}, e, remove));
        return read;
      });
    };
    const add = el('button', { type: 'button', class: 'quiet', text: 'Add' });
    add.addEventListener('click', () => {
      items.splice(0, items.length, ...readers.map((r) => r()));
      const [item] = unNull(s.items);
      items.push(item.default ?? ({ integer: 0, number: 0, boolean: false, string: '', object: {}, array: [] })[item.type] ?? null);
      render();
      onChange();
    });
    box.append(add);
    render();
    return [box, () => {
      const v = readers.map((r) => {
        const x = r();
        return x === undefined ? null : x;
      });
      return optional && v.length === 0 && value === undefined ? undefined : v;
    }];
  }

  return {
    // Uses `schema` (null: no form) and calls `changed()` after each edit of the form.
    init(schema, changed) {
      root = schema;
      onChange = changed;
    },
    enabled: () => root !== null && root !== undefined && typeof root === 'object',
    // Builds the form into `container` from `input` (the request's current input).
    render(container, input) {
      slots.clear();
      const [s] = unNull(root);
      if (s.type === 'object' || s.properties) {
        const [box, read] = object(s, input, 'input');
        container.replaceChildren(box, errorSlot('input'));
        reader = read;
      } else {
        const [box, read] = field('input', s, input, 'input', true);
        container.replaceChildren(box);
        reader = read;
      }
    },
    // The input the form holds now.
    value: () => (reader ? reader() : undefined),
    // Shows each violation ({path, message}) next to its field (the nearest one that has a
    // slot); returns those that found none.
    showErrors(violations) {
      for (const slot of slots.values()) slot.textContent = '';
      const left = [];
      for (const v of violations) {
        let path = v.path;
        const missing = /^missing field `(.+)`$/.exec(v.message);
        if (missing && slots.has(`${path}.${missing[1]}`)) path = `${path}.${missing[1]}`;
        while (path && !slots.has(path)) path = path.replace(/(\.[^.[\]]*|\[\d+\])$/, '') === path ? '' : path.replace(/(\.[^.[\]]*|\[\d+\])$/, '');
        const slot = slots.get(path);
        if (slot) slot.textContent = slot.textContent ? slot.textContent + ' · ' + v.message : v.message;
        else left.push(v);
      }
      return left;
    },
  };
})();
