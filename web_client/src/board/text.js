// The text tool: a field appears where the board was touched; Entrée writes the text on the
// board, Échap gives up. Its size on screen matches the size it will have on the board.
import { h } from '../dom.js';

const FONT = 'system-ui, "Noto Sans", "DejaVu Sans", Arial, sans-serif';
const measure = document.createElement('canvas').getContext('2d');

/**
 * `on`: fontSize(), maxLength(), commit({kind, box, text, font_size}), and edit(item, {text,
 * box}) for a text edited in place (`open` with that item: its words, size and place).
 */
export function textTool(stage, view, on) {
  let field = null;

  function open(x, y, clientX, clientY, existing = null) {
    close(true);
    const size = existing?.font_size ?? on.fontSize();
    const rect = stage.getBoundingClientRect();
    const px = size / view.unitsPerPixel();
    field = h('input', {
      type: 'text', class: 'board-text', 'aria-label': 'Texte à écrire au tableau (Entrée pour valider)',
      maxlength: on.maxLength(), autocomplete: 'off', enterkeyhint: 'done',
      style: `left:${clientX - rect.left}px;top:${clientY - rect.top}px;font-size:${px}px`,
    });
    const current = field;
    if (existing) {
      current.value = existing.text ?? '';
      current.style.color = existing.style?.color ?? '';
      current.dataset.editing = existing.id;
    }
    current.addEventListener('keydown', (e) => {
      if (e.key === 'Enter') { e.preventDefault(); write(current, x, y, size, existing); }
      if (e.key === 'Escape') { e.preventDefault(); close(false); }
    });
    current.addEventListener('blur', () => write(current, x, y, size, existing));
    stage.append(current);
    current.focus();
  }

  function write(input, x, y, size, existing) {
    if (input !== field) return;
    const value = input.value.trim();
    field = null;
    input.remove();
    if (!value || (existing && value === existing.text)) return;
    measure.font = `${size}px ${FONT}`;
    const w = Math.ceil(measure.measureText(value).width);
    const box = { x, y, w: Math.max(1, w), h: Math.ceil(size * 1.25) };
    if (existing) on.edit(existing, { text: value, box });
    else on.commit({ kind: 'text', text: value, font_size: size, box });
  }

  /** Close the field; `keep` writes what was typed. */
  function close(keep = false) {
    if (!field) return;
    const input = field;
    if (!keep) { field = null; input.remove(); return; }
    input.blur();
  }

  return { open, close };
}
