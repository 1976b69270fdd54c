// The roll by keyboard (RGAA 7.1 / 12.8, docs/accessibility.md): one Tab stop per pupil (their
// présent ↔ absent button); ← → move between that pupil's controls (the button, « Autre… »,
// the minutes, « Commentaire »), ↑ ↓ to the previous or next pupil, Début / Fin to the first
// or last. The list is redrawn after every mark: focus goes back to the same control of the
// same pupil, never to the top of the page.
//
// « Autre… » is a select whose choice marks the pupil: with the mouse or a finger the mark is
// given at once, but arrows only browse the options and Entrée (or leaving the field) gives
// the mark, so that walking through the list never marks anyone by accident (WCAG 3.2.2).

const CONTROLS = ['.student-toggle', 'select.more', '.minutes', '.note-toggle'];
const ROW = '.student-row';

function controls(row) {
  return CONTROLS.map((sel) => row.querySelector(`:scope > ${sel}`)).filter(Boolean);
}

function ctlOf(el) {
  if (el.closest('.comment-form')) return 'comment';
  return CONTROLS.find((sel) => el.matches(sel)) ?? null;
}

/** Where focus is in the list now, to be found again after a redraw. */
export function rememberFocus(list) {
  const el = document.activeElement;
  if (!el || !list.contains(el)) return null;
  const row = el.closest(ROW);
  if (!row) return null;
  return { id: row.dataset.studentId, ctl: ctlOf(el), commentFor: el.dataset.commentFor };
}

/** After a redraw: one Tab stop per pupil, and focus back where it was. */
export function restoreFocus(list, saved) {
  for (const row of list.querySelectorAll(ROW)) {
    for (const el of controls(row)) el.tabIndex = el.matches('.student-toggle') ? 0 : -1;
  }
  if (!saved) return;
  const row = list.querySelector(`${ROW}[data-student-id="${saved.id}"]`);
  if (!row) return;
  let target = null;
  if (saved.ctl === 'comment') {
    // The comment box stays open while typing; once saved or cancelled, back to its button.
    target = row.querySelector('.comment-form [data-comment-for]') ?? row.querySelector('.note-toggle');
  } else if (saved.ctl) {
    target = row.querySelector(`:scope > ${saved.ctl}`);
  }
  (target ?? row.querySelector('.student-toggle'))?.focus();
}

/** Arrow keys within the list, and the careful « Autre… » select. */
export function attachRollKeys(list) {
  list.addEventListener('keydown', (e) => {
    const el = e.target;
    const row = el.closest?.(ROW);
    if (!row || el.closest('.comment-form') || e.altKey || e.ctrlKey || e.metaKey) return;
    const own = controls(row);
    const i = own.indexOf(el);
    if (i < 0) return;
    const rows = [...list.querySelectorAll(ROW)];
    const r = rows.indexOf(row);
    const toRow = (k) => rows[k]?.querySelector('.student-toggle')?.focus();
    const isField = el.matches('select, input');
    let handled = true;
    switch (e.key) {
      case 'ArrowRight': own[(i + 1) % own.length].focus(); break;
      case 'ArrowLeft': own[(i - 1 + own.length) % own.length].focus(); break;
      case 'ArrowDown': if (isField) handled = false; else toRow(Math.min(r + 1, rows.length - 1)); break;
      case 'ArrowUp': if (isField) handled = false; else toRow(Math.max(r - 1, 0)); break;
      case 'Home': if (isField) handled = false; else toRow(0); break;
      case 'End': if (isField) handled = false; else toRow(rows.length - 1); break;
      default: handled = false;
    }
    if (handled) e.preventDefault();
  });

  // « Autre… »: browsing with the keyboard does not mark; Entrée or leaving the field does.
  const browsing = new WeakSet();
  const commit = (select) => {
    browsing.delete(select);
    if (select.value) select.dispatchEvent(new Event('change', { bubbles: true }));
  };
  list.addEventListener('keydown', (e) => {
    const select = e.target;
    if (!select.matches?.('select.more')) return;
    if (e.key === 'Enter' && browsing.has(select)) { e.preventDefault(); commit(select); return; }
    if (e.key === 'Escape' && browsing.has(select)) {
      e.preventDefault();
      browsing.delete(select);
      select.value = '';
      return;
    }
    if (e.altKey || e.key === ' ' || e.key === 'Enter' || e.key === 'F4') browsing.delete(select);
    else if (e.key === 'ArrowUp' || e.key === 'ArrowDown' || e.key.startsWith('Page')
      || e.key === 'Home' || e.key === 'End' || e.key.length === 1) browsing.add(select);
  }, true);
  list.addEventListener('change', (e) => {
    if (browsing.has(e.target) && e.isTrusted) e.stopPropagation(); // not yet: still browsing
  }, true);
  list.addEventListener('focusout', (e) => {
    if (browsing.has(e.target)) commit(e.target);
  });
}
