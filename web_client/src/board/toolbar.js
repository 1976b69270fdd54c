// The drawing tools (a column beside the board): tools, undo/redo, colours and widths.
// Buttons are toggles (`aria-pressed`) with their name in text, ≥ 48 px (64 px on a TBI).
import { h } from '../dom.js';
import { icon } from './icons.js';
import { INSTRUMENTS } from './instrument-kinds.js';

export const TOOLS = [
  ['select', 'Sélection'],
  ['pen', 'Stylo'],
  ['highlighter', 'Surligneur'],
  ['line', 'Trait'],
  ['arrow', 'Flèche'],
  ['rect', 'Rectangle'],
  ['ellipse', 'Ellipse'],
  ['text', 'Texte'],
  ['eraser', 'Gomme'],
  ['laser', 'Pointeur laser'],
  ['pan', 'Déplacer la vue'],
];

export const COLOURS = [
  ['#111827', 'Noir'],
  ['#1d4ed8', 'Bleu'],
  ['#dc2626', 'Rouge'],
  ['#15803d', 'Vert'],
  ['#ea580c', 'Orange'],
  ['#7e22ce', 'Violet'],
  ['#facc15', 'Jaune'],
];

export const WIDTHS = [
  [3, 'Fin'],
  [6, 'Moyen'],
  [12, 'Épais'],
];

const hidden = (text) => h('span', { class: 'visually-hidden' }, text);

/**
 * The tools column. `on`: tool(name), colour(hex), width(n), undo(), redo(), image(),
 * instrument(kind), remove() (the selection).
 */
export function drawingTools(on) {
  const buttons = { tools: new Map(), colours: new Map(), widths: new Map(), instruments: new Map() };
  const toggle = (group, key, content, label, onclick, cls = '') => {
    const b = h('button', { type: 'button', class: `btn tool ${cls}`, 'aria-pressed': 'false',
      title: label, dataset: { key: String(key) }, onclick }, content);
    buttons[group].set(key, b);
    return b;
  };
  const undo = h('button', { type: 'button', class: 'btn tool', title: 'Annuler (Ctrl+Z)',
    'aria-keyshortcuts': 'Control+Z', onclick: () => on.undo() }, icon('undo'), hidden('Annuler'));
  const redo = h('button', { type: 'button', class: 'btn tool', title: 'Rétablir (Ctrl+Y)',
    'aria-keyshortcuts': 'Control+Y', onclick: () => on.redo() }, icon('redo'), hidden('Rétablir'));

  const image = h('button', { type: 'button', class: 'btn tool', title: 'Insérer une image',
    onclick: () => on.image() }, icon('image'), hidden('Insérer une image'));
  const remove = h('button', { type: 'button', class: 'btn tool danger', title: 'Supprimer la sélection',
    'aria-keyshortcuts': 'Delete', onclick: () => on.remove() }, icon('trash'), hidden('Supprimer la sélection'));
  const instruments = h('div', { class: 'tool-group', role: 'group', 'aria-label': 'Instruments' },
    INSTRUMENTS.map(([kind, label]) => toggle('instruments', kind, [icon(kind), hidden(label)], label,
      () => on.instrument(kind))));
  const el = h('div', { class: 'board-tools', role: 'toolbar', 'aria-label': 'Outils de dessin',
    'aria-orientation': 'vertical' },
  h('div', { class: 'tool-group', role: 'group', 'aria-label': 'Outils' },
    TOOLS.map(([name, label]) => toggle('tools', name, [icon(name), hidden(label)], label,
      () => on.tool(name)))),
  h('div', { class: 'tool-group', role: 'group', 'aria-label': 'Annuler, rétablir, image, supprimer' },
    undo, redo, image, remove),
  instruments,
  h('div', { class: 'tool-group', role: 'group', 'aria-label': 'Couleurs' },
    COLOURS.map(([hex, label]) => toggle('colours', hex,
      [h('span', { class: 'swatch', style: `background:${hex}`, 'aria-hidden': 'true' }), hidden(label)],
      label, () => on.colour(hex), 'colour'))),
  h('div', { class: 'tool-group', role: 'group', 'aria-label': 'Épaisseurs' },
    WIDTHS.map(([w, label]) => toggle('widths', w,
      [h('span', { class: 'dot', style: `width:${w + 4}px;height:${w + 4}px`, 'aria-hidden': 'true' }),
        hidden(label)], label, () => on.width(w), 'width'))));

  // Arrow keys move between the buttons (Tab still goes through them too).
  el.addEventListener('keydown', (e) => {
    const step = { ArrowDown: 1, ArrowRight: 1, ArrowUp: -1, ArrowLeft: -1 }[e.key];
    if (!step) return;
    const all = [...el.querySelectorAll('button:not(:disabled)')];
    const i = all.indexOf(document.activeElement);
    if (i < 0) return;
    e.preventDefault();
    all[(i + step + all.length) % all.length].focus();
  });

  /** Reflect the choices and whether this person may draw now. */
  function update({ tool, colour, width, canDraw, teacher = false, selected = 0, shown = () => false }) {
    const mark = (group, current) => {
      for (const [key, b] of buttons[group]) b.setAttribute('aria-pressed', String(key === current));
    };
    mark('tools', tool);
    mark('colours', colour);
    mark('widths', width);
    for (const [key, b] of buttons.tools) b.disabled = key !== 'pan' && !canDraw;
    for (const group of ['colours', 'widths']) for (const b of buttons[group].values()) b.disabled = !canDraw;
    undo.disabled = !canDraw;
    redo.disabled = !canDraw;
    image.disabled = !canDraw;
    remove.disabled = !canDraw || !selected;
    instruments.hidden = !teacher;
    for (const [kind, b] of buttons.instruments) {
      b.setAttribute('aria-pressed', String(shown(kind)));
      b.disabled = !canDraw;
    }
  }

  return { el, update };
}
