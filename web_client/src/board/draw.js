// Drawing pages and items on a 2D canvas context already scaled to board units.
import { PAGE_H, PAGE_W, normBox } from './geometry.js';

const paths = new WeakMap(); // stroke → {n, path}: a Path2D rebuilt only when it grew
const images = new Map(); // src → HTMLImageElement
let onImageLoad = () => {};

/** `fn` runs when an image used by a page or an item has arrived (redraw then). */
export function whenImagesLoad(fn) {
  onImageLoad = fn;
}

/** Start loading an image now (the next page's background: turning to it is then instant). */
export function preload(src) {
  if (src) image(src);
}

function image(src) {
  let img = images.get(src);
  if (!img) {
    img = new Image();
    img.decoding = 'async';
    img.onload = () => onImageLoad();
    img.src = src;
    images.set(src, img);
  }
  return img.complete && img.naturalWidth ? img : null;
}

// Backgrounds. A TBI page is 1920 units wide; like paper, squares are about 5 mm,
// Seyès has 8 mm squares cut by 3 thin lines (every 2 mm) and a margin line.
const GRID = 40;
const SEYES = 64;

function lines(ctx, color, width, step, { vertical = true, horizontal = true, from = 0 } = {}) {
  ctx.beginPath();
  if (vertical) {
    for (let x = from; x <= PAGE_W; x += step) { ctx.moveTo(x, 0); ctx.lineTo(x, PAGE_H); }
  }
  if (horizontal) {
    for (let y = step; y <= PAGE_H; y += step) { ctx.moveTo(0, y); ctx.lineTo(PAGE_W, y); }
  }
  ctx.strokeStyle = color;
  ctx.lineWidth = width;
  ctx.stroke();
}

export function drawBackground(ctx, page) {
  ctx.fillStyle = '#ffffff';
  ctx.fillRect(0, 0, PAGE_W, PAGE_H);
  switch (page?.background) {
    case 'squares':
      lines(ctx, '#c7d7ee', 1.2, GRID);
      break;
    case 'seyes': {
      const margin = SEYES * 4;
      lines(ctx, '#b9d3f0', 1, SEYES / 4, { vertical: false });
      lines(ctx, '#8d86c9', 1.6, SEYES, { from: margin });
      ctx.beginPath();
      ctx.moveTo(margin, 0);
      ctx.lineTo(margin, PAGE_H);
      ctx.strokeStyle = '#e3557d';
      ctx.lineWidth = 2.5;
      ctx.stroke();
      break;
    }
    case 'lines':
      lines(ctx, '#9fbbe3', 1.5, SEYES, { vertical: false });
      break;
    case 'image': {
      const img = page.image && image(page.image);
      if (img) ctx.drawImage(img, 0, 0, PAGE_W, PAGE_H);
      break;
    }
    default:
      break;
  }
}

/** A smooth path through the points: quadratic curves between the midpoints. */
function strokePath(item) {
  const pts = item.points;
  const cached = paths.get(item);
  if (cached && cached.n === pts.length) return cached.path;
  const path = new Path2D();
  if (pts.length) {
    path.moveTo(pts[0][0], pts[0][1]);
    if (pts.length === 1) path.lineTo(pts[0][0] + 0.01, pts[0][1]);
    for (let i = 1; i < pts.length - 1; i += 1) {
      const [x, y] = pts[i];
      const [nx, ny] = pts[i + 1];
      path.quadraticCurveTo(x, y, (x + nx) / 2, (y + ny) / 2);
    }
    if (pts.length > 1) path.lineTo(pts[pts.length - 1][0], pts[pts.length - 1][1]);
  }
  paths.set(item, { n: pts.length, path });
  return path;
}

function arrowHead(ctx, [x1, y1], [x2, y2], width) {
  const angle = Math.atan2(y2 - y1, x2 - x1);
  const size = 12 + width * 3;
  ctx.beginPath();
  ctx.moveTo(x2, y2);
  ctx.lineTo(x2 - size * Math.cos(angle - 0.45), y2 - size * Math.sin(angle - 0.45));
  ctx.lineTo(x2 - size * Math.cos(angle + 0.45), y2 - size * Math.sin(angle + 0.45));
  ctx.closePath();
  ctx.fill();
}

export function drawItem(ctx, item) {
  const style = item.style ?? {};
  const color = style.color ?? '#1a1a1a'; // the server's default
  const width = style.width ?? 4;
  ctx.save();
  ctx.globalAlpha = style.opacity ?? 1;
  ctx.strokeStyle = color;
  ctx.fillStyle = color;
  ctx.lineWidth = width;
  ctx.lineCap = 'round';
  ctx.lineJoin = 'round';
  switch (item.kind) {
    case 'stroke':
    case 'highlighter':
      if (item.points?.length) ctx.stroke(strokePath(item));
      break;
    case 'line':
    case 'arrow': {
      const [a, b] = item.points ?? [];
      if (!a || !b) break;
      ctx.beginPath();
      ctx.moveTo(a[0], a[1]);
      ctx.lineTo(b[0], b[1]);
      ctx.stroke();
      if (item.kind === 'arrow') arrowHead(ctx, a, b, width);
      break;
    }
    case 'rect':
    case 'ellipse': {
      if (!item.box) break;
      const b = normBox(item.box);
      ctx.beginPath();
      if (item.kind === 'rect') ctx.rect(b.x, b.y, b.w, b.h);
      else ctx.ellipse(b.x + b.w / 2, b.y + b.h / 2, b.w / 2, b.h / 2, 0, 0, 2 * Math.PI);
      if (style.fill) { ctx.fillStyle = style.fill; ctx.fill(); }
      ctx.stroke();
      break;
    }
    case 'text': {
      if (!item.box || !item.text) break;
      const size = item.font_size ?? 32;
      ctx.font = `${size}px system-ui, "Noto Sans", "DejaVu Sans", Arial, sans-serif`;
      ctx.textBaseline = 'top';
      String(item.text).split('\n').forEach((line, i) => {
        ctx.fillText(line, item.box.x, item.box.y + i * size * 1.25);
      });
      break;
    }
    case 'image': {
      const img = item.src && item.box && image(item.src);
      if (img) { const b = normBox(item.box); ctx.drawImage(img, b.x, b.y, b.w, b.h); }
      break;
    }
    default:
      break;
  }
  ctx.restore();
}
