// Geometry of items in board units (a page is 1920 × 1080): bounding boxes and hit tests,
// cached per item so that 5,000 items stay cheap to cull and to erase.

export const PAGE_W = 1920;
export const PAGE_H = 1080;

const boxes = new WeakMap(); // item → {n, box}: recomputed when a stroke grows

/** The box of a box item, with a positive width and height. */
export function normBox({ x, y, w, h }) {
  return { x: Math.min(x, x + w), y: Math.min(y, y + h), w: Math.abs(w), h: Math.abs(h) };
}

/** The item's bounding box, widened by half its line width. */
export function bounds(item) {
  const n = item.points?.length ?? -1;
  const cached = boxes.get(item);
  if (cached && cached.n === n) return cached.box;
  let box;
  if (item.points?.length) {
    let x0 = Infinity; let y0 = Infinity; let x1 = -Infinity; let y1 = -Infinity;
    for (const [x, y] of item.points) {
      if (x < x0) x0 = x;
      if (x > x1) x1 = x;
      if (y < y0) y0 = y;
      if (y > y1) y1 = y;
    }
    box = { x: x0, y: y0, w: x1 - x0, h: y1 - y0 };
  } else if (item.box) {
    box = normBox(item.box);
  } else {
    box = { x: 0, y: 0, w: 0, h: 0 };
  }
  const pad = (item.style?.width ?? 4) / 2 + (item.kind === 'arrow' ? item.style?.width * 2 + 12 : 0);
  box = { x: box.x - pad, y: box.y - pad, w: box.w + 2 * pad, h: box.h + 2 * pad };
  boxes.set(item, { n, box });
  return box;
}

export function intersects(a, b) {
  return a.x <= b.x + b.w && b.x <= a.x + a.w && a.y <= b.y + b.h && b.y <= a.y + a.h;
}

function segmentDistance(px, py, [ax, ay], [bx, by]) {
  const dx = bx - ax;
  const dy = by - ay;
  const len = dx * dx + dy * dy;
  const t = len ? Math.max(0, Math.min(1, ((px - ax) * dx + (py - ay) * dy) / len)) : 0;
  return Math.hypot(px - (ax + t * dx), py - (ay + t * dy));
}

/** Whether a disc of radius `r` at (x, y) touches the item (the eraser). */
export function hits(item, x, y, r) {
  const box = bounds(item);
  if (!intersects(box, { x: x - r, y: y - r, w: 2 * r, h: 2 * r })) return false;
  const reach = r + (item.style?.width ?? 4) / 2;
  if (item.points?.length) {
    const pts = item.points;
    if (pts.length === 1) return Math.hypot(x - pts[0][0], y - pts[0][1]) <= reach;
    for (let i = 1; i < pts.length; i += 1) {
      if (segmentDistance(x, y, pts[i - 1], pts[i]) <= reach) return true;
    }
    return false;
  }
  if (!item.box) return false;
  const b = normBox(item.box);
  if (item.kind === 'rect' && !item.style?.fill) { // only its outline
    const inside = x > b.x + reach && x < b.x + b.w - reach && y > b.y + reach && y < b.y + b.h - reach;
    return !inside;
  }
  if (item.kind === 'ellipse') {
    const rx = b.w / 2 || 1;
    const ry = b.h / 2 || 1;
    const d = Math.hypot((x - b.x - rx) / rx, (y - b.y - ry) / ry);
    const tol = reach / Math.min(rx, ry);
    return item.style?.fill ? d <= 1 + tol : Math.abs(d - 1) <= tol;
  }
  return true; // text and images: their box
}
