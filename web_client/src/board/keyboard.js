// The board by keyboard (RGAA 7.3, WCAG 2.1.1; docs/accessibility.md): the drawing area takes
// the focus and shows a cursor. Arrows move it (Maj: faster). Entrée (or Espace): with
// « Texte », a field opens at the cursor; with a shape (trait, flèche, rectangle, ellipse),
// the first Entrée sets one corner and shows the shape following the cursor, the second
// places it; with the pen or the highlighter, Entrée starts a line that follows the cursor
// and Entrée ends it; with the eraser, Entrée erases what is under the cursor. Échap gives
// up. What happens is said in a polite live region.
import { h } from '../dom.js';
import { PAGE_H, PAGE_W } from './geometry.js';
import { hits } from './geometry.js';
import { newId } from './ids.js';

const SHAPES = { line: 'Trait', arrow: 'Flèche', rect: 'Rectangle', ellipse: 'Ellipse' };
const LINES = { pen: 'Tracé', highlighter: 'Surlignage' };
const STEP = 20; // board units per arrow press (the page is 1920 × 1080)
const BIG_STEP = 120;

/**
 * `ctx`: the board page's input context (view, state, me(), tool(), pageId(), canDraw(),
 * limits(), style(kind), commit(op), openText(x, y, clientX, clientY)).
 */
export function attachBoardKeys(ctx) {
  const { view } = ctx;
  const area = view.el;
  const help = h('p', { class: 'visually-hidden', id: 'board-keys-help' },
    'Au clavier : les flèches déplacent le curseur (avec Maj, plus vite). Entrée : avec l’outil '
    + 'Texte, écrire à cet endroit ; avec une forme, poser un premier coin puis, après avoir '
    + 'déplacé le curseur, le second ; avec le stylo ou le surligneur, commencer un tracé qui '
    + 'suit le curseur, puis le finir ; avec la gomme, effacer ce qui est sous le curseur. '
    + 'Échap : annuler.');
  const said = h('p', { class: 'visually-hidden', role: 'status', 'aria-live': 'polite' });
  const cursor = h('div', { class: 'board-cursor', 'aria-hidden': 'true', hidden: true });
  // An application, no longer a mere picture: it takes the keys (its label stays the page's).
  area.setAttribute('role', 'application');
  area.setAttribute('aria-roledescription', 'surface de dessin');
  area.setAttribute('aria-describedby', help.id);
  area.tabIndex = 0;
  area.append(help, said);
  view.sheet.append(cursor);

  let at = null; // the cursor, in board units
  let anchor = null; // a shape's first corner
  let line = null; // the points of a pen or highlighter line being drawn

  const say = (text) => { said.textContent = text; };
  const where = ([x, y]) => `${Math.round((x / PAGE_W) * 100)} % depuis la gauche, `
    + `${Math.round((y / PAGE_H) * 100)} % depuis le haut`;

  function centre() {
    const v = view.visible();
    return [Math.round(v.x + v.w / 2), Math.round(v.y + v.h / 2)];
  }

  function toScreen([x, y]) {
    const rect = view.sheet.getBoundingClientRect();
    const k = (rect.width / PAGE_W) * view.zoom;
    return [(x - view.x) * k, (y - view.y) * k, rect];
  }

  function show() {
    if (!at) { cursor.hidden = true; return; }
    const [left, top] = toScreen(at);
    cursor.style.left = `${left}px`;
    cursor.style.top = `${top}px`;
    cursor.hidden = false;
    if (anchor) view.preview('keyboard', shape());
    if (line) view.preview('keyboard', lineItem('preview'));
  }

  function lineItem(id) {
    const tool = ctx.tool();
    const kind = tool === 'pen' ? 'stroke' : 'highlighter';
    return { id, kind, page_id: ctx.pageId(), style: ctx.style(kind), points: line.map((p) => [...p]) };
  }

  /** The teacher erases anything; a student only their own items (as the server rules). */
  function erasable(item) {
    const me = ctx.me();
    if (!me || me.is_teacher) return Boolean(me);
    if (item.author !== undefined && item.author !== null) return String(item.author) === String(me.id);
    return item.id.startsWith(`${me.id}-`);
  }

  function shape() {
    const kind = ctx.tool();
    const base = { kind, page_id: ctx.pageId(), style: ctx.style(kind) };
    if (kind === 'line' || kind === 'arrow') return { ...base, id: 'preview', points: [anchor, at] };
    return { ...base, id: 'preview', box: { x: Math.min(anchor[0], at[0]), y: Math.min(anchor[1], at[1]),
      w: Math.abs(at[0] - anchor[0]), h: Math.abs(at[1] - anchor[1]) } };
  }

  function cancel() {
    if (anchor) { anchor = null; view.preview('keyboard', null); say('Forme annulée.'); }
    if (line) { line = null; view.preview('keyboard', null); say('Tracé annulé.'); }
  }

  function act() {
    const tool = ctx.tool();
    if (!ctx.pageId()) return;
    if (!ctx.canDraw()) { say("Vous n'avez pas le stylo : le tableau est en lecture seule."); return; }
    if (tool === 'text') {
      const [left, top, rect] = toScreen(at);
      ctx.openText(at[0], at[1], rect.left + left, rect.top + top);
      const field = view.el.closest('.board-stage-wrap')?.querySelector('.board-text')
        ?? document.querySelector('.board-text');
      // Once written (Entrée) or given up (Échap), the keyboard comes back to the board.
      field?.addEventListener('keydown', (e) => {
        if (e.key === 'Enter' || e.key === 'Escape') setTimeout(() => area.focus(), 0);
      });
      return;
    }
    if (tool in LINES) {
      if (!line) {
        line = [[...at]];
        say(`${LINES[tool]} commencé ${where(at)}. Déplacez le curseur, puis Entrée pour finir.`);
        show();
        return;
      }
      const item = lineItem(newId(ctx.me()?.id));
      line = null;
      view.preview('keyboard', null);
      if (item.points.length < 2) { say('Tracé trop court : rien n’est posé.'); return; }
      ctx.commit({ type: 'add', item });
      say(`${LINES[tool]} posé au tableau.`);
      return;
    }
    if (tool === 'eraser') {
      const r = 14 * view.unitsPerPixel();
      const ids = [...ctx.state.items.values()].filter((item) => item.page_id === ctx.pageId()
        && erasable(item) && hits(item, at[0], at[1], r)).map((item) => item.id);
      if (!ids.length) { say('Rien à effacer sous le curseur.'); return; }
      ctx.commit({ type: 'remove', item_ids: ids });
      say(`${ids.length} élément${ids.length > 1 ? 's' : ''} effacé${ids.length > 1 ? 's' : ''}.`);
      return;
    }
    if (!(tool in SHAPES)) {
      say("L'outil choisi se manie au doigt ou à la souris ; au clavier : stylo, surligneur, "
        + `texte, ${Object.values(SHAPES).join(', ').toLowerCase()}, gomme.`);
      return;
    }
    if (!anchor) {
      anchor = [...at];
      say(`${SHAPES[tool]} : premier coin posé, ${where(at)}. Déplacez le curseur puis Entrée.`);
      show();
      return;
    }
    const item = { ...shape(), id: newId(ctx.me()?.id) };
    view.preview('keyboard', null);
    const from = anchor;
    anchor = null;
    if (Math.hypot(at[0] - from[0], at[1] - from[1]) < 4) { say('Forme trop petite : rien n’est posé.'); return; }
    ctx.commit({ type: 'add', item });
    say(`${SHAPES[tool]} posé${tool === 'arrow' || tool === 'ellipse' ? 'e' : ''} au tableau.`);
  }

  function onKey(e) {
    if (e.target !== area || e.altKey || e.ctrlKey || e.metaKey) return;
    const step = e.shiftKey ? BIG_STEP : STEP;
    const move = { ArrowLeft: [-step, 0], ArrowRight: [step, 0], ArrowUp: [0, -step],
      ArrowDown: [0, step] }[e.key];
    if (move) {
      e.preventDefault();
      const v = view.visible();
      at = [Math.max(v.x, Math.min(v.x + v.w, at[0] + move[0])),
        Math.max(v.y, Math.min(v.y + v.h, at[1] + move[1]))];
      if (line) {
        const max = ctx.limits?.()?.points_per_stroke || 5000;
        if (line.length < max) line.push([...at]);
      }
      show();
    } else if (e.key === 'Enter' || e.key === ' ') {
      e.preventDefault();
      act();
    } else if (e.key === 'Escape') {
      cancel();
    }
  }

  const onFocus = () => { at = at ?? centre(); show(); };
  const onBlur = () => { cursor.hidden = true; };
  area.addEventListener('keydown', onKey);
  area.addEventListener('focus', onFocus);
  area.addEventListener('blur', onBlur);

  return {
    /** The cursor, in board units (tests and the curious). */
    get cursor() { return at; },
    destroy() {
      area.removeEventListener('keydown', onKey);
      area.removeEventListener('focus', onFocus);
      area.removeEventListener('blur', onBlur);
    },
  };
}
