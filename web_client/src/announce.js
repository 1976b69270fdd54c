// Live announcements for screen readers (WCAG 4.1.3, docs/accessibility.md): one short
// sentence per real change, never a whole summary again on every redraw. A region must be in
// the page before its text changes, so each page creates its own once, at render time.
import { h } from './dom.js';

/**
 * A polite live region that keeps the last `keep` lines visible (a sighted user sees what was
 * announced too) and adds one line per call; the same line twice in a row is said once.
 */
export function liveLog({ label, keep = 5, className = 'live-log' } = {}) {
  const el = h('div', { class: className, role: 'log', 'aria-live': 'polite',
    'aria-label': label ?? null });
  let last = '';
  return {
    el,
    say(text) {
      if (!text || text === last) return;
      last = text;
      el.append(h('p', {}, text));
      while (el.childElementCount > keep) el.firstElementChild.remove();
    },
  };
}

/** French plural of a count and its noun: « 1 notification non lue », « 2 notifications non lues ». */
export function countOf(n, one, many) {
  return `${n} ${n > 1 ? many : one}`;
}

/** Copy each column's header into its cells' data-label, kept up to date as rows change, so a
 *  table shown as one block per row on a phone still says what each value is. */
export function labelColumns(table) {
  const label = () => {
    const names = [...table.querySelectorAll('thead th')].map((th) => th.textContent.trim());
    for (const tr of table.querySelectorAll('tbody tr')) {
      [...tr.children].forEach((cell, i) => {
        if (names[i] && cell.dataset.label !== names[i]) cell.dataset.label = names[i];
      });
    }
  };
  new MutationObserver(label).observe(table, { childList: true, subtree: true });
  label();
  return table;
}
