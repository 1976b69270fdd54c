// Pages and view: previous / next page, add a page (blank, squared, Seyès, lines), zoom,
// follow the teacher (students) or share my view (teacher), full screen for the TBI.
import { h } from '../dom.js';
import { icon } from './icons.js';

export const BACKGROUNDS = [
  ['blank', 'Page blanche'],
  ['squares', 'Page quadrillée'],
  ['seyes', 'Page Seyès'],
  ['lines', 'Page lignée'],
];

const hidden = (text) => h('span', { class: 'visually-hidden' }, text);

/**
 * `on`: previous(), next(), addPage(background), zoom(delta), follow(), fullscreen(), pages().
 * `teacher` shows « Ajouter une page » and names the follow toggle « Partager ma vue ».
 */
export function pageBar(on, { teacher }) {
  const previous = h('button', { type: 'button', class: 'btn tool', title: 'Page précédente',
    onclick: () => on.previous() }, icon('previous'), hidden('Page précédente'));
  const next = h('button', { type: 'button', class: 'btn tool', title: 'Page suivante',
    onclick: () => on.next() }, icon('next'), hidden('Page suivante'));
  const counter = h('span', { class: 'page-counter', 'aria-live': 'polite' }, 'Page –');
  const menu = h('details', { class: 'menu' },
    h('summary', { class: 'btn tool', title: 'Ajouter une page' }, icon('addPage'),
      h('span', { class: 'label-wide' }, 'Ajouter une page')),
    h('div', { class: 'menu-list', role: 'group', 'aria-label': 'Fond de la nouvelle page' },
      BACKGROUNDS.map(([bg, label]) => h('button', {
        type: 'button', class: 'btn menu-item', dataset: { background: bg },
        onclick: () => { menu.open = false; on.addPage(bg); },
      }, h('span', { class: `bg-sample bg-${bg}`, 'aria-hidden': 'true' }), label))));
  const zoomOut = h('button', { type: 'button', class: 'btn tool', title: 'Zoom arrière',
    onclick: () => on.zoom(-1) }, icon('zoomOut'), hidden('Zoom arrière'));
  const zoomIn = h('button', { type: 'button', class: 'btn tool', title: 'Zoom avant',
    onclick: () => on.zoom(1) }, icon('zoomIn'), hidden('Zoom avant'));
  const zoomText = h('span', { class: 'zoom-text' }, '100 %');
  const follow = h('button', { type: 'button', class: 'btn tool follow', 'aria-pressed': 'true',
    onclick: () => on.follow() }, icon('follow'),
  h('span', { class: 'label-wide' }, teacher ? 'Partager ma vue' : "Suivre l'enseignant·e"));
  const full = h('button', { type: 'button', class: 'btn tool', onclick: () => on.fullscreen() },
    icon('fullscreen'), h('span', { class: 'label-wide' }, 'Plein écran'));

  const pages = h('button', { type: 'button', class: 'btn tool pages-button', title: 'Toutes les pages',
    onclick: () => on.pages() }, icon('pages'), h('span', { class: 'label-wide' }, 'Pages'));
  const end = h('div', { class: 'bar-group' }, follow, full); // the page adds « Questions » here
  const el = h('div', { class: 'page-bar' },
    h('div', { class: 'bar-group', role: 'group', 'aria-label': 'Pages' },
      previous, counter, next, pages, teacher ? menu : null),
    h('div', { class: 'bar-group', role: 'group', 'aria-label': 'Zoom' }, zoomOut, zoomText, zoomIn),
    end);

  function update({ index, count, zoom, following, fullscreen }) {
    counter.textContent = count ? `Page ${index + 1} sur ${count}` : 'Aucune page';
    previous.disabled = index <= 0;
    next.disabled = index >= count - 1;
    zoomText.textContent = `${Math.round(zoom * 100)} %`;
    zoomOut.disabled = zoom <= 1;
    zoomIn.disabled = zoom >= 4;
    follow.setAttribute('aria-pressed', String(following));
    full.querySelector('.label-wide').textContent = fullscreen ? 'Quitter le plein écran' : 'Plein écran';
  }

  return { el, end, update };
}
