// Pointer input on the sheet (mouse, finger, stylus: Pointer Events, `touch-action: none`).
// Each pointer draws on its own, so two fingers can write at once; pressure is ignored.
import { hits } from './geometry.js';
import { newId } from './ids.js';
import { StrokeSender } from './stroke.js';

const LASER_EVERY_MS = 33; // at most ~30 pointer events per second
const MIN_STEP = 0.8; // board units: closer points add nothing

const SHAPES = new Set(['line', 'arrow', 'rect', 'ellipse']);

/**
 * `ctx`: view, state, conn, me(), tool(), style(kind), pageId(), canDraw(), limits(),
 * local(op), commit(op), dropLocal(id), refused(error, opts), panBy(dx, dy),
 * openText(x, y, clientX, clientY), laser(x, y).
 */
export function attachInput(ctx) {
  const { view } = ctx;
  const sheet = view.sheet;
  const gestures = new Map(); // pointerId → gesture

  const at = (e) => view.toBoard(e.clientX, e.clientY);

  function begin(e) {
    if (e.pointerType === 'mouse' && e.button !== 0) return;
    // A stylus held upside down (or with its eraser button) erases, whatever the tool.
    const tool = e.pointerType === 'pen' && (e.buttons & 32) ? 'eraser' : ctx.tool();
    const pageId = ctx.pageId();
    if (!pageId) return;
    if (tool !== 'pan' && !ctx.canDraw()) return;
    const point = at(e);
    let g = null;
    if (tool === 'pen' || tool === 'highlighter') g = startStroke(tool, pageId, point);
    else if (SHAPES.has(tool)) g = { tool, pageId, from: point, to: point };
    else if (tool === 'eraser') g = { tool, pageId, erased: [] };
    else if (tool === 'laser') g = { tool, pageId, last: 0 };
    else if (tool === 'pan') g = { tool, client: [e.clientX, e.clientY] };
    else if (tool === 'select') g = { tool, sel: ctx.selection.begin(point, e) };
    else if (tool === 'text') { e.preventDefault(); ctx.openText(point[0], point[1], e.clientX, e.clientY); return; }
    if (!g) return;
    e.preventDefault();
    try { sheet.setPointerCapture(e.pointerId); } catch { /* a pointer already gone */ }
    gestures.set(e.pointerId, g);
    move(e);
  }

  function startStroke(tool, pageId, start) {
    const kind = tool === 'pen' ? 'stroke' : 'highlighter';
    const guide = ctx.guide?.(start) ?? null; // an instrument's edge this stroke starts on
    const point = guide ? guide(start) : start;
    const item = { id: newId(ctx.me()?.id), kind, page_id: pageId, style: ctx.style(kind),
      points: [point] };
    const op = { type: 'add', item: { ...item, style: { ...item.style }, points: [point] } };
    view.hold(item.id);
    ctx.local(op);
    const sender = new StrokeSender(ctx, op);
    return { tool, pageId, id: item.id, sender, count: 1, last: point, guide };
  }

  function move(e) {
    const g = gestures.get(e.pointerId);
    if (!g) return;
    const events = e.getCoalescedEvents?.() ?? [];
    const all = events.length ? events : [e];
    switch (g.tool) {
      case 'pen':
      case 'highlighter': return grow(g, all.map(at));
      case 'eraser': return erase(g, all.map(at));
      case 'laser': return pointLaser(g, at(e));
      case 'select': return ctx.selection.move(g.sel, at(e));
      case 'pan': {
        const k = view.unitsPerPixel();
        ctx.panBy((g.client[0] - e.clientX) * k, (g.client[1] - e.clientY) * k);
        g.client = [e.clientX, e.clientY];
        return undefined;
      }
      default: // shapes: a preview until the pointer is lifted
        g.to = at(e);
        view.preview(e.pointerId, shapeItem(g));
        return undefined;
    }
  }

  function grow(g, raw) {
    const item = ctx.state.items.get(g.id);
    if (!item || g.sender.dead) return;
    // Along a ruler's edge (or around the compass), the stroke follows the instrument.
    const points = g.guide ? raw.map(g.guide) : raw;
    const fresh = [];
    for (const p of points) {
      if (Math.hypot(p[0] - g.last[0], p[1] - g.last[1]) < MIN_STEP) continue;
      fresh.push(p);
      g.last = p;
    }
    if (!fresh.length) return;
    const limit = ctx.limits()?.points_per_stroke || 5000;
    if (g.count + fresh.length > limit) { // a very long stroke goes on as a new one
      finishStroke(g);
      Object.assign(g, startStroke(g.tool, g.pageId, g.last));
      return;
    }
    item.points.push(...fresh);
    g.count += fresh.length;
    g.sender.push(fresh);
    view.grew();
  }

  function finishStroke(g) {
    g.sender.finish();
    view.release(g.id);
  }

  /** What the eraser touches goes at once here; the server gets one `remove` when the
   * pointer is lifted, so one undo brings the whole gesture back. */
  function erase(g, points) {
    const r = 14 * view.unitsPerPixel();
    const ids = [];
    for (const [x, y] of points) {
      for (const item of ctx.state.items.values()) {
        if (item.page_id === g.pageId && !ids.includes(item.id) && erasable(item)
          && hits(item, x, y, r)) {
          ids.push(item.id);
        }
      }
    }
    if (!ids.length) return;
    g.erased.push(...ids);
    ctx.local({ type: 'remove', item_ids: ids });
  }

  /** The teacher erases anything; a student only their own items (as the server rules). */
  function erasable(item) {
    const me = ctx.me();
    if (!me || me.is_teacher) return Boolean(me);
    if (item.author !== undefined && item.author !== null) return String(item.author) === String(me.id);
    return item.id.startsWith(`${me.id}-`);
  }

  function finishErase(g) {
    if (!g.erased.length) return;
    const max = ctx.limits()?.items_per_page || 5000;
    for (let i = 0; i < g.erased.length; i += max) {
      ctx.commit({ type: 'remove', item_ids: g.erased.slice(i, i + max) });
    }
  }

  function pointLaser(g, [x, y]) {
    view.laser('me', null, g.pageId, x, y);
    const now = performance.now();
    if (now - g.last < LASER_EVERY_MS) return;
    g.last = now;
    ctx.laser(x, y, g.pageId);
  }

  function shapeItem(g) {
    const [x1, y1] = g.from;
    const [x2, y2] = g.to;
    const base = { id: 'preview', kind: g.tool, page_id: g.pageId, style: ctx.style(g.tool) };
    if (g.tool === 'line' || g.tool === 'arrow') return { ...base, points: [g.from, g.to] };
    return { ...base, box: { x: Math.min(x1, x2), y: Math.min(y1, y2),
      w: Math.abs(x2 - x1), h: Math.abs(y2 - y1) } };
  }

  function end(e) {
    const g = gestures.get(e.pointerId);
    if (!g) return;
    gestures.delete(e.pointerId);
    if (g.tool === 'pen' || g.tool === 'highlighter') finishStroke(g);
    else if (g.tool === 'eraser') finishErase(g);
    else if (g.tool === 'select') ctx.selection.end(g.sel, e);
    else if (SHAPES.has(g.tool)) {
      view.preview(e.pointerId, null);
      const [x1, y1] = g.from;
      const [x2, y2] = g.to;
      if (e.type === 'pointerup' && Math.hypot(x2 - x1, y2 - y1) >= 4) {
        const item = { ...shapeItem(g), id: newId(ctx.me()?.id) };
        ctx.commit({ type: 'add', item });
      }
    }
  }

  sheet.addEventListener('pointerdown', begin);
  sheet.addEventListener('pointermove', move);
  sheet.addEventListener('pointerup', end);
  sheet.addEventListener('pointercancel', end);
  sheet.addEventListener('lostpointercapture', end);
  sheet.addEventListener('contextmenu', (e) => e.preventDefault());

  /** Stop every gesture (the pen was taken back, the page changed). */
  return function cancelAll() {
    for (const [pointerId, g] of gestures) {
      if (g.tool === 'pen' || g.tool === 'highlighter') finishStroke(g);
      if (g.tool === 'eraser') finishErase(g);
      if (SHAPES.has(g.tool)) view.preview(pointerId, null);
      if (g.tool === 'select') ctx.selection.end(g.sel, { type: 'pointercancel' });
    }
    gestures.clear();
  };
}
