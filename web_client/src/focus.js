// Redraws that keep the person's place (WCAG 2.4.3, 3.2.1): a list rebuilt because something
// arrived live must not throw the focus back to the top of the page, nor lose what was being
// typed or chosen in its forms. Items are found again by a stable attribute (their id).

const FIELDS = 'input:not([type="file"]):not([type="checkbox"]):not([type="radio"]), select, textarea';
const FOCUSABLE = 'a[href], button, input, select, textarea, summary, [tabindex]';

function positions(container, attr, selector) {
  const out = new Map();
  for (const item of container.querySelectorAll(`[${attr}]`)) {
    [...item.querySelectorAll(selector)].forEach((el, i) => {
      if (el.closest(`[${attr}]`) === item) out.set(`${item.getAttribute(attr)}#${i}`, el);
    });
  }
  return out;
}

/** Run `redraw()` (which rebuilds `container`), then put back the focus and the fields'
 *  values, item by item (`attr` names each item: data-notice-id, data-event-id…). */
export function keepPlace(container, attr, redraw) {
  const values = new Map();
  for (const [key, el] of positions(container, attr, FIELDS)) values.set(key, [el.tagName, el.value]);
  let focused = null;
  const active = document.activeElement;
  if (active && container.contains(active)) {
    for (const [key, el] of positions(container, attr, FOCUSABLE)) if (el === active) focused = key;
  }
  redraw();
  for (const [key, el] of positions(container, attr, FIELDS)) {
    const before = values.get(key);
    if (before && before[0] === el.tagName && before[1] !== el.value) el.value = before[1];
  }
  if (focused) positions(container, attr, FOCUSABLE).get(focused)?.focus();
}
