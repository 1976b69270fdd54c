// « Pages »: every page of the board as a thumbnail (its background and what is drawn on it),
// to go to one; the teacher also moves a page up or down and deletes one (ops `move_page`,
// `remove_page`: undoable, and every member's list follows).
import { h, replace } from '../dom.js';
import { drawBackground, drawItem } from './draw.js';
import { PAGE_H, PAGE_W } from './geometry.js';
import { icon } from './icons.js';

const THUMB_W = 192;
const IMPORTED = /^imp-([0-9a-f]+)-\d+$/; // pages of one imported document share this prefix
const THUMB_H = (THUMB_W * PAGE_H) / PAGE_W;

function thumbnail(state, page) {
  const canvas = h('canvas', { class: 'page-thumb', width: THUMB_W * 2, height: THUMB_H * 2,
    'aria-hidden': 'true' });
  const c = canvas.getContext('2d');
  const s = canvas.width / PAGE_W;
  c.setTransform(s, 0, 0, s, 0, 0);
  drawBackground(c, page);
  for (const item of state.itemsOn(page.id)) drawItem(c, item);
  return canvas;
}

/**
 * `on`: go(pageId), move(pageId, index), remove(pageId), removeAll(pageIds), teacher(),
 * current().
 * The panel is a <dialog> over the board; `render()` again after the pages change.
 */
export function pagesPanel(state, on) {
  const list = h('ol', { class: 'pages-list' });
  const close = h('button', { type: 'button', class: 'btn', onclick: () => dialog.close() }, 'Fermer');
  const dialog = h('dialog', { class: 'pages-dialog', 'aria-labelledby': 'pages-title' },
    h('div', { class: 'pages-head' }, h('h2', { id: 'pages-title' }, 'Pages du tableau'), close),
    list);
  let timer = 0;

  function render() {
    if (!dialog.open) return;
    const teacher = on.teacher();
    const current = on.current();
    const n = state.pages.length;
    const batches = new Map(); // an import → its pages' ids
    for (const page of state.pages) {
      const batch = IMPORTED.exec(page.id)?.[1];
      if (batch) batches.set(batch, [...(batches.get(batch) ?? []), page.id]);
    }
    replace(list, state.pages.map((page, i) => {
      const batch = IMPORTED.exec(page.id)?.[1];
      const siblings = batch ? batches.get(batch) : [];
      // On the first page of an import: delete the whole document at once.
      const whole = teacher && siblings.length > 1 && siblings[0] === page.id && siblings.length < n
        ? h('button', { type: 'button', class: 'btn danger page-import-remove',
          onclick: () => on.removeAll(siblings) },
        icon('trash'), `Supprimer les ${siblings.length} pages de cet import`)
        : null;
      const label = `Page ${i + 1}`;
      const go = h('button', { type: 'button', class: 'page-go', 'aria-current': page.id === current ? 'page' : null,
        'aria-label': `Aller à la page ${i + 1}`, onclick: () => { on.go(page.id); dialog.close(); } },
      thumbnail(state, page), h('span', { class: 'page-name' }, label));
      const actions = teacher ? h('div', { class: 'page-actions', role: 'group', 'aria-label': label },
        h('button', { type: 'button', class: 'btn tool', title: 'Monter', disabled: i === 0,
          'aria-label': `Monter la page ${i + 1}`, onclick: () => on.move(page.id, i - 1) }, icon('up')),
        h('button', { type: 'button', class: 'btn tool', title: 'Descendre', disabled: i === n - 1,
          'aria-label': `Descendre la page ${i + 1}`, onclick: () => on.move(page.id, i + 1) }, icon('down')),
        h('button', { type: 'button', class: 'btn tool danger', title: 'Supprimer', disabled: n === 1,
          'aria-label': `Supprimer la page ${i + 1}`, onclick: () => on.remove(page.id, i) }, icon('trash')))
        : null;
      return h('li', { class: 'page-entry', dataset: { pageId: page.id } }, go, actions, whole);
    }));
  }

  return {
    dialog,
    open() { dialog.showModal(); render(); list.querySelector('[aria-current] , .page-go')?.focus(); },
    /** Pages or items changed: redrawn a moment later (many ops may come in a burst). */
    changed() {
      if (!dialog.open) return;
      clearTimeout(timer);
      timer = setTimeout(render, 150);
    },
    render,
  };
}
