// Redraws that keep the person's place (WCAG 2.4.3, 3.2.1): a list rebuilt because something
// arrived live must not throw the focus back to the top of the page, nor lose what was being
// typed or chosen in its forms. Items are found again by a stable attribute (their id).

const FIELDS = 'input:not([type="file"]):not([type="checkbox"]):not([type="radio"]), select, textarea';
const FOCUSABLE = 'a[href], button, input, select, textarea, summary, [tabindex]';

function positions(container, attr, selector, keyOf) {
  const out = new Map();
  for (const item of container.querySelectorAll(`[${attr}]`)) {
    const key = keyOf?.(item) ?? item.getAttribute(attr);
    [...item.querySelectorAll(selector)].forEach((el, i) => {
      if (el.closest(`[${attr}]`) === item) out.set(`${key}#${i}`, el);
    });
  }
  return out;
}

/** Run `redraw()` (which rebuilds `container`), then put back the focus, the fields' values
 *  and the open menus (`<details>`), item by item: `attr` marks each item (data-notice-id,
 *  data-event-id…), its value names it unless `keyOf(item)` says otherwise. */
export function keepPlace(container, attr, redraw, keyOf = null) {
  const values = new Map();
  for (const [key, el] of positions(container, attr, FIELDS, keyOf)) {
    values.set(key, [el.tagName, el.value]);
  }
  const open = new Set();
  for (const [key, el] of positions(container, attr, 'details', keyOf)) if (el.open) open.add(key);
  let focused = null;
  const active = document.activeElement;
  if (active && container.contains(active)) {
    for (const [key, el] of positions(container, attr, FOCUSABLE, keyOf)) {
      if (el === active) focused = key;
    }
  }
  redraw();
  for (const [key, el] of positions(container, attr, 'details', keyOf)) if (open.has(key)) el.open = true;
  for (const [key, el] of positions(container, attr, FIELDS, keyOf)) {
    const before = values.get(key);
    if (before && before[0] === el.tagName && before[1] !== el.value) el.value = before[1];
  }
  if (focused) positions(container, attr, FOCUSABLE, keyOf).get(focused)?.focus();
}
