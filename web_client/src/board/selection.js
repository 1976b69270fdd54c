// The « Sélection » tool: touch or click an item to select it (Maj adds), or draw a loop
// around several (lasso); drag them to move them, drag the corner handle to resize, change
// their colour or width with the usual buttons, delete them, double-tap a text to edit it.
// Each gesture is one op (one `move`, one `update_many`, one `remove`), so one undo (held by
// the server, per author) takes it back whole. A pupil with the pen selects only their
// own items, as the server rules.
import { bounds, hits } from './geometry.js';

const HANDLE_PX = 22; // the resize handle, in screen pixels (a finger's width with its margin)
const CLICK_UNITS = 3; // a drag shorter than this is a click

/** Whether a point is inside a polygon (the lasso), by ray casting. */
function inside([x, y], poly) {
  let yes = false;
  for (let i = 0, j = poly.length - 1; i < poly.length; j = i, i += 1) {
    const [xi, yi] = poly[i];
    const [xj, yj] = poly[j];
    if ((yi > y) !== (yj > y) && x < ((xj - xi) * (y - yi)) / (yj - yi) + xi) yes = !yes;
  }
  return yes;
}

function union(boxes) {
  if (!boxes.length) return null;
  let x0 = Infinity; let y0 = Infinity; let x1 = -Infinity; let y1 = -Infinity;
  for (const b of boxes) {
    x0 = Math.min(x0, b.x); y0 = Math.min(y0, b.y);
    x1 = Math.max(x1, b.x + b.w); y1 = Math.max(y1, b.y + b.h);
  }
  return { x: x0, y: y0, w: x1 - x0, h: y1 - y0 };
}

const round = (v) => Math.round(v * 10) / 10;

/**
 * `ctx`: state, view, pageId(), canEdit(item), local(op), commit(op), changed(),
 * editText(item), limits().
 */
export function selectionTool(ctx) {
  const { state, view } = ctx;
  let ids = new Set();
  let lasso = null;

  const items = () => [...ids].map((id) => state.items.get(id))
    .filter((item) => item && item.page_id === ctx.pageId());

  function box() {
    return union(items().map(bounds));
  }

  function handleAt([x, y]) {
    const b = box();
    if (!b) return false;
    const r = HANDLE_PX * view.unitsPerPixel();
    return Math.abs(x - (b.x + b.w)) <= r && Math.abs(y - (b.y + b.h)) <= r;
  }

  function topItemAt([x, y]) {
    const r = 10 * view.unitsPerPixel();
    const all = state.itemsOn(ctx.pageId());
    for (let i = all.length - 1; i >= 0; i -= 1) {
      if (ctx.canEdit(all[i]) && hits(all[i], x, y, r)) return all[i];
    }
    return null;
  }

  function set(next) {
    ids = new Set(next);
    ctx.changed();
    view.redrawTop();
  }

  /** Pointer down with the tool: a gesture for `move` and `end`. */
  function begin(point, e) {
    if (ids.size && handleAt(point)) {
      const originals = items().map((item) => structuredClone(item));
      return { mode: 'resize', from: point, box: box(), originals, last: null };
    }
    const hit = topItemAt(point);
    const b = box();
    const inBox = b && point[0] >= b.x && point[0] <= b.x + b.w && point[1] >= b.y
      && point[1] <= b.y + b.h;
    if (hit) {
      if (e.shiftKey) set(ids.has(hit.id) ? [...ids].filter((id) => id !== hit.id) : [...ids, hit.id]);
      else if (!ids.has(hit.id)) set([hit.id]);
      return { mode: 'move', from: point, dx: 0, dy: 0, hit };
    }
    if (inBox) return { mode: 'move', from: point, dx: 0, dy: 0, hit: null };
    if (!e.shiftKey) set([]);
    lasso = [point];
    view.redrawTop();
    return { mode: 'lasso' };
  }

  function move(g, point) {
    if (g.mode === 'lasso') {
      lasso.push(point);
      view.redrawTop();
    } else if (g.mode === 'move') {
      const dx = round(point[0] - g.from[0]);
      const dy = round(point[1] - g.from[1]);
      const step = { x: dx - g.dx, y: dy - g.dy };
      if (!step.x && !step.y) return;
      ctx.local({ type: 'move', item_ids: [...ids], dx: step.x, dy: step.y }); // shown, not sent
      g.dx = dx;
      g.dy = dy;
    } else if (g.mode === 'resize') {
      const b = g.box;
      const keep = 8 * view.unitsPerPixel();
      const k = Math.max(keep / Math.max(b.w, b.h, 1),
        Math.max((point[0] - b.x) / (b.w || 1), (point[1] - b.y) / (b.h || 1))); // proportions kept
      g.last = k;
      for (const item of g.originals) ctx.local({ type: 'update', item_id: item.id, set: scaled(item, b, k) });
    }
  }

  /** The item's geometry scaled by `k` from the selection's top-left corner. */
  function scaled(item, b, k) {
    const sx = (x) => round(b.x + (x - b.x) * k);
    const sy = (y) => round(b.y + (y - b.y) * k);
    if (item.points) return { points: item.points.map(([x, y]) => [sx(x), sy(y)]) };
    const set = { box: { x: sx(item.box.x), y: sy(item.box.y), w: round(item.box.w * k),
      h: round(item.box.h * k) } };
    if (item.kind === 'text') set.font_size = Math.max(8, Math.min(200, round((item.font_size ?? 32) * k)));
    return set;
  }

  function end(g, e) {
    if (g.mode === 'lasso') {
      const poly = lasso;
      lasso = null;
      if (poly.length > 2) {
        const found = state.itemsOn(ctx.pageId()).filter((item) => {
          if (!ctx.canEdit(item)) return false;
          const bb = bounds(item);
          return inside([bb.x + bb.w / 2, bb.y + bb.h / 2], poly)
            || (item.points ?? []).some((p) => inside(p, poly));
        });
        set([...ids, ...found.map((item) => item.id)]);
      }
      view.redrawTop();
    } else if (g.mode === 'move') {
      if (Math.abs(g.dx) < CLICK_UNITS && Math.abs(g.dy) < CLICK_UNITS) {
        if (g.dx || g.dy) ctx.local({ type: 'move', item_ids: [...ids], dx: -g.dx, dy: -g.dy });
        if (g.hit?.kind === 'text' && e.type === 'pointerup' && g.hit.id === lastTap.id
          && performance.now() - lastTap.t < 500) ctx.editText(state.items.get(g.hit.id));
        lastTap = { id: g.hit?.id, t: performance.now() };
        return;
      }
      ctx.local({ type: 'move', item_ids: [...ids], dx: -g.dx, dy: -g.dy }); // the server's turn
      if (e.type === 'pointerup') {
        ctx.commit({ type: 'move', item_ids: [...ids], dx: g.dx, dy: g.dy });
      }
    } else if (g.mode === 'resize') {
      for (const item of g.originals) { // back as they were, then one update each, sent
        const set = item.points ? { points: item.points } : { box: item.box, font_size: item.font_size };
        if (set.font_size === undefined) delete set.font_size;
        ctx.local({ type: 'update', item_id: item.id, set });
      }
      if (e.type === 'pointerup' && g.last && Math.abs(g.last - 1) > 0.01) {
        commitUpdates(g.originals.map((item) => ({ item_id: item.id, set: scaled(item, g.box, g.last) })));
      }
    }
  }
  let lastTap = { id: null, t: 0 };

  /** The selection's frame and handle, and the lasso being drawn (upper canvas). */
  function overlay(c, unit) {
    if (lasso?.length > 1) {
      c.save();
      c.setLineDash([8 * unit, 6 * unit]);
      c.strokeStyle = '#1d4ed8';
      c.lineWidth = 2 * unit;
      c.fillStyle = 'rgba(29, 78, 216, 0.06)';
      c.beginPath();
      c.moveTo(...lasso[0]);
      for (const p of lasso.slice(1)) c.lineTo(...p);
      c.closePath();
      c.fill();
      c.stroke();
      c.restore();
    }
    const b = box();
    if (!b) return;
    const pad = 6 * unit;
    const r = HANDLE_PX * unit;
    c.save();
    c.setLineDash([10 * unit, 6 * unit]);
    c.strokeStyle = '#1d4ed8';
    c.lineWidth = 2 * unit;
    c.strokeRect(b.x - pad, b.y - pad, b.w + 2 * pad, b.h + 2 * pad);
    c.setLineDash([]);
    c.fillStyle = '#ffffff';
    c.fillRect(b.x + b.w - r / 2, b.y + b.h - r / 2, r, r);
    c.strokeRect(b.x + b.w - r / 2, b.y + b.h - r / 2, r, r);
    c.restore();
  }

  /**
   * One `update_many` for the gesture (one undo), in pieces if it is too big for one message
   * (a resize of long strokes carries all their points).
   */
  function commitUpdates(updates) {
    const max = (ctx.limits?.()?.payload_bytes || 65536) * 0.8;
    let batch = [];
    let size = 0;
    const flush = () => {
      if (batch.length === 1) ctx.commit({ type: 'update', ...batch[0] });
      else if (batch.length) {
        ctx.commit({ type: 'update_many', updates: batch.map((u) => ({ type: 'update', ...u })) });
      }
      batch = [];
      size = 0;
    };
    for (const u of updates) {
      const n = JSON.stringify(u).length;
      if (batch.length && (size + n > max || batch.length >= 500)) flush();
      batch.push(u);
      size += n;
    }
    flush();
  }

  /** Restyle: the colour or width buttons while something is selected. */
  function restyle(change) {
    const updates = [];
    for (const item of items()) {
      const style = { color: '#1a1a1a', width: 4, opacity: 1, fill: null, ...item.style, ...change };
      if (item.kind === 'text' && change.width) continue; // a text's size is its font size
      if (item.kind === 'highlighter' && change.width) style.width = Math.min(64, change.width * 4);
      updates.push({ item_id: item.id, set: { style } });
    }
    commitUpdates(updates);
  }

  function remove() {
    const all = items().map((item) => item.id);
    if (all.length) ctx.commit({ type: 'remove', item_ids: all });
    set([]);
  }

  /** Items gone (erased by someone, page changed): forget them. */
  function prune() {
    if (!ids.size) return; // nothing selected: nothing to do on every remote op
    const still = [...ids].filter((id) => state.items.get(id)?.page_id === ctx.pageId());
    if (still.length !== ids.size) set(still);
    else view.redrawTop();
  }

  view.overlays.push(overlay);
  return {
    begin, move, end, restyle, remove, prune,
    clear: () => set([]),
    select: (next) => set(next),
    get ids() { return [...ids]; },
    get size() { return items().length; },
    bounds: box,
  };
}
