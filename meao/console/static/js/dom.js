// The one way the console builds DOM: elements and text nodes only. Data (package names, app names, error
// texts) is attacker-controlled, so nothing here turns a string into markup (tests/console/test_vendor.py checks).

/**
 * h('div', {class: 'card', 'data-testid': 'pop-x', on: {click: fn}}, 'text', child, [more], null)
 * Attribute values are set with setAttribute (never an on* handler attribute); children are nodes or
 * strings (as text nodes); null, undefined and false are skipped; arrays are flattened.
 */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key === 'on') {
      for (const [event, handler] of Object.entries(value)) el.addEventListener(event, handler);
    } else if (key.startsWith('on')) {
      throw new Error(`h(): use {on: {...}} for event handlers, not ${key}`);
    } else if (key === 'style') {
      throw new Error('h(): no inline style attributes (CSP); set el.style.* properties instead');
    } else {
      el.setAttribute(key, value === true ? '' : String(value));
    }
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else if (child instanceof Node) el.appendChild(child);
    else el.appendChild(document.createTextNode(String(child)));
  }
}

/** Replace everything inside ``el`` with ``children``. */
export function fill(el, ...children) {
  const frag = document.createDocumentFragment();
  append(frag, children);
  el.replaceChildren(frag);
  return el;
}
