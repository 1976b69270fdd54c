// The board on screen: two stacked canvases. The lower one keeps the committed picture of
// the page (background + finished items) and is only drawn onto, item by item; it is redrawn
// whole only when something under the top changes (erase, undo, another page, zoom, resize).
// The upper one holds what moves: strokes being drawn, shape previews, laser pointers.
import { h } from '../dom.js';
import { drawBackground, drawItem, whenImagesLoad } from './draw.js';
import { PAGE_H, PAGE_W, bounds, intersects } from './geometry.js';

const BAKE_AFTER_MS = 600; // a remote stroke with no new points for this long is finished
const LASER_MS = 1200;
const ZOOM_MAX = 4;

export class BoardView {
  constructor(state) {
    this.state = state;
    this.base = h('canvas', { class: 'board-base', 'aria-hidden': 'true' });
    this.top = h('canvas', { class: 'board-top', 'aria-hidden': 'true' });
    this.sheet = h('div', { class: 'board-sheet' }, this.base, this.top);
    this.el = h('div', { class: 'board-stage' }, this.sheet);
    this.pageId = null;
    this.x = 0;
    this.y = 0;
    this.zoom = 1;
    this.live = new Map(); // item id → {held, t}: drawn on the upper canvas
    this.previews = new Map(); // shapes being drawn here, not yet on the board
    this.lasers = new Map(); // who → {name, page_id, trail: [[x, y, t]…]}
    this.toDraw = [];
    this.full = true;
    this.topDirty = true;
    this.frameId = 0;
    this.redraws = 0; // how many full redraws (the tests and the curious read it)
    this.overlays = []; // (ctx, unitsPerPixel) => void, drawn on the upper canvas
    this.listeners = new Set(); // () => void after a layout, page or viewport change
    whenImagesLoad(() => this.invalidate());
    this.resizer = new ResizeObserver(() => this.layout());
    this.resizer.observe(this.el);
  }

  destroy() {
    this.resizer.disconnect();
    cancelAnimationFrame(this.frameId);
  }

  /** Fit a 16:9 sheet in the stage, canvases at the device's pixel density. */
  layout() {
    const { width, height } = this.el.getBoundingClientRect();
    if (!width || !height) return;
    const cssW = Math.min(width, (height * PAGE_W) / PAGE_H);
    const cssH = (cssW * PAGE_H) / PAGE_W;
    const dpr = Math.min(window.devicePixelRatio || 1, 2);
    this.sheet.style.width = `${cssW}px`;
    this.sheet.style.height = `${cssH}px`;
    for (const canvas of [this.base, this.top]) {
      canvas.width = Math.round(cssW * dpr);
      canvas.height = Math.round(cssH * dpr);
    }
    this.invalidate();
  }

  invalidate() {
    this.full = true;
    this.topDirty = true;
    this.schedule();
    for (const fn of this.listeners) fn();
  }

  /** The upper canvas again (a selection or a lasso changed). */
  redrawTop() {
    this.topDirty = true;
    this.schedule();
  }

  /** Board units → canvas pixels for the current page and viewport. */
  transform(ctx) {
    const s = (this.base.width / PAGE_W) * this.zoom;
    ctx.setTransform(s, 0, 0, s, -this.x * s, -this.y * s);
  }

  /** A pointer position on screen → board units. */
  toBoard(clientX, clientY) {
    const rect = this.sheet.getBoundingClientRect();
    const k = (rect.width / PAGE_W) * this.zoom;
    const round = (v) => Math.round(v * 10) / 10;
    return [round(this.x + (clientX - rect.left) / k), round(this.y + (clientY - rect.top) / k)];
  }

  /** How many board units one screen pixel is (for eraser sizes, hit tolerance). */
  unitsPerPixel() {
    const rect = this.sheet.getBoundingClientRect();
    return rect.width ? PAGE_W / (rect.width * this.zoom) : 1;
  }

  visible() {
    return { x: this.x, y: this.y, w: PAGE_W / this.zoom, h: PAGE_H / this.zoom };
  }

  setPage(pageId) {
    if (pageId === this.pageId) return;
    this.pageId = pageId;
    this.invalidate();
  }

  /** Show the viewport whose top-left is (x, y) at `zoom` (1: the whole page). */
  setViewport(x, y, zoom) {
    const z = Math.max(1, Math.min(ZOOM_MAX, Number(zoom) || 1));
    const nx = Math.max(0, Math.min(PAGE_W - PAGE_W / z, Number(x) || 0));
    const ny = Math.max(0, Math.min(PAGE_H - PAGE_H / z, Number(y) || 0));
    if (nx === this.x && ny === this.y && z === this.zoom) return;
    Object.assign(this, { x: nx, y: ny, zoom: z });
    this.invalidate();
  }

  /** What an op did, as reported by BoardState.apply. */
  changed(change) {
    if (change.redraw.has(this.pageId)) this.full = true;
    const now = performance.now();
    for (const item of change.added) {
      if (item.page_id !== this.pageId) continue;
      if (item.kind === 'stroke' || item.kind === 'highlighter') {
        if (!this.live.has(item.id)) this.live.set(item.id, { held: false, t: now });
        this.topDirty = true;
      } else {
        this.toDraw.push(item);
      }
    }
    for (const { item } of change.grown) {
      if (item.page_id !== this.pageId) continue;
      const entry = this.live.get(item.id);
      if (entry) { entry.t = now; this.topDirty = true; } else { this.full = true; }
    }
    this.schedule();
  }

  /** A stroke drawn here: keep it on the upper canvas until `release`. */
  hold(id) {
    this.live.set(id, { held: true, t: performance.now() });
    this.topDirty = true;
    this.schedule();
  }

  grew() {
    this.topDirty = true;
    this.schedule();
  }

  release(id) {
    const entry = this.live.get(id);
    if (entry) { entry.held = false; entry.t = 0; }
    this.schedule();
  }

  preview(key, item) {
    if (item) this.previews.set(key, item); else this.previews.delete(key);
    this.topDirty = true;
    this.schedule();
  }

  laser(who, name, pageId, x, y) {
    let entry = this.lasers.get(who);
    if (!entry || entry.page_id !== pageId) {
      entry = { name, page_id: pageId, trail: [] };
      this.lasers.set(who, entry);
    }
    entry.trail.push([x, y, performance.now()]);
    if (entry.trail.length > 40) entry.trail.shift();
    this.topDirty = true;
    this.schedule();
  }

  schedule() {
    if (!this.frameId) this.frameId = requestAnimationFrame(() => this.frame());
  }

  frame() {
    this.frameId = 0;
    const now = performance.now();
    const ctx = this.base.getContext('2d');
    if (this.full) {
      this.redrawBase(ctx);
    } else if (this.toDraw.length) {
      this.transform(ctx);
      for (const item of this.toDraw) if (this.state.items.get(item.id) === item) drawItem(ctx, item);
    }
    this.toDraw = [];
    this.full = false;
    for (const [id, entry] of this.live) { // finished strokes go down onto the committed layer
      if (entry.held || now - entry.t < BAKE_AFTER_MS) continue;
      this.live.delete(id);
      const item = this.state.items.get(id);
      if (item && item.page_id === this.pageId) { this.transform(ctx); drawItem(ctx, item); }
      this.topDirty = true;
    }
    const animating = this.live.size > 0 || this.lasers.size > 0;
    if (this.topDirty || this.lasers.size) this.drawTop(now);
    if (animating) this.schedule();
  }

  redrawBase(ctx) {
    this.redraws += 1;
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.clearRect(0, 0, this.base.width, this.base.height);
    this.transform(ctx);
    drawBackground(ctx, this.state.page(this.pageId));
    const seen = this.visible();
    for (const item of this.state.items.values()) {
      if (item.page_id !== this.pageId || this.live.has(item.id)) continue;
      if (this.zoom > 1 && !intersects(bounds(item), seen)) continue;
      drawItem(ctx, item);
    }
  }

  drawTop(now) {
    this.topDirty = false;
    const ctx = this.top.getContext('2d');
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.clearRect(0, 0, this.top.width, this.top.height);
    this.transform(ctx);
    for (const id of this.live.keys()) {
      const item = this.state.items.get(id);
      if (!item) { this.live.delete(id); continue; }
      if (item.page_id === this.pageId) drawItem(ctx, item);
    }
    for (const item of this.previews.values()) if (item.page_id === this.pageId) drawItem(ctx, item);
    for (const draw of this.overlays) draw(ctx, this.unitsPerPixel()); // selection, lasso
    this.drawLasers(ctx, now);
  }

  drawLasers(ctx, now) {
    const unit = this.unitsPerPixel();
    for (const [who, laser] of this.lasers) {
      laser.trail = laser.trail.filter(([, , t]) => now - t < LASER_MS);
      if (!laser.trail.length) { this.lasers.delete(who); continue; }
      if (laser.page_id !== this.pageId) continue;
      laser.trail.forEach(([x, y, t], i) => {
        const fade = 1 - (now - t) / LASER_MS;
        const last = i === laser.trail.length - 1;
        ctx.globalAlpha = Math.max(0, fade) * (last ? 1 : 0.5);
        ctx.fillStyle = '#ef1b1b';
        ctx.beginPath();
        ctx.arc(x, y, (last ? 9 : 5) * unit * 1.4, 0, 2 * Math.PI);
        ctx.fill();
      });
      const [x, y, t] = laser.trail[laser.trail.length - 1];
      if (laser.name) {
        ctx.globalAlpha = Math.max(0, 1 - (now - t) / LASER_MS);
        ctx.font = `${14 * unit * 1.3}px system-ui, sans-serif`;
        ctx.fillStyle = '#7f1d1d';
        ctx.fillText(laser.name, x + 14 * unit, y - 10 * unit);
      }
      ctx.globalAlpha = 1;
    }
  }
}
