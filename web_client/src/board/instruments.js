// Geometry instruments for collège maths: a ruler (graduated in cm and mm), a set square
// (équerre), a protractor (rapporteur, 0–180°) and a compass (compas: set its opening with the
// square handle on its pencil, then turn the yellow knob: the pencil draws the arc). The teacher lays them on the sheet and
// moves them with a finger, a stylus or the mouse: drag the body to move, drag the round knob
// to turn (the angle is shown, and snaps to whole degrees; to 15° steps near them). A pen
// stroke that starts along an edge follows it, as a pencil along a real ruler. The class sees
// them where the teacher puts them (the volatile `instrument` event; `join` gives the ones
// shown to a late joiner).
import { PAGE_H, PAGE_W } from './geometry.js';

const NS = 'http://www.w3.org/2000/svg';
export const CM = 48; // board units per centimetre on the sheet (a 1920-unit board is 40 cm)
const SEND_EVERY_MS = 70;
const SNAP_PX = 28; // how close to an edge (screen pixels) a stroke must start to follow it

export { INSTRUMENTS } from './instrument-kinds.js';

const DEFAULTS = {
  ruler: { size: 20 * CM, x: 420, y: 640, angle: 0 },
  square: { size: 10 * CM, x: 700, y: 800, angle: 0 },
  protractor: { size: 6 * CM, x: 960, y: 760, angle: 0 },
  compass: { size: 5 * CM, x: 860, y: 540, angle: 0 },
};

function el(tag, attrs = {}, ...children) {
  const node = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  node.append(...children);
  return node;
}

function text(x, y, content, size, attrs = {}) {
  const t = el('text', { x, y, 'font-size': size, 'text-anchor': 'middle', ...attrs });
  t.textContent = content;
  return t;
}

/** Graduations along the x axis from 0 to `length`, marks going down (`dir` 1) or up. */
function graduations(length, dir = 1) {
  const g = el('g', { class: 'ticks' });
  let d = '';
  for (let mm = 0; mm * CM / 10 <= length + 0.01; mm += 1) {
    const x = (mm * CM) / 10;
    const h = mm % 10 === 0 ? 26 : mm % 5 === 0 ? 18 : 11;
    d += `M${x} 0v${h * dir}`;
    if (mm % 10 === 0) g.append(text(x, dir * 44, String(mm / 10), 17));
  }
  g.prepend(el('path', { d, class: 'tick' }));
  return g;
}

function rulerShape(size) {
  const g = el('g');
  g.append(el('rect', { x: -16, y: 0, width: size + 32, height: 2 * CM + 10, rx: 8, class: 'body' }));
  g.append(graduations(size));
  g.append(text(size / 2, 2 * CM - 8, 'cm', 15, { class: 'unit' }));
  return g;
}

function squareShape(size) {
  const g = el('g');
  const h = size * 0.62;
  g.append(el('path', { d: `M0 0H${size}L0 ${-h}Z`, class: 'body' }));
  g.append(el('path', { d: `M0 ${-16}h16v16`, class: 'tick' })); // the right angle
  const ticks = graduations(size - 40, -1);
  g.append(ticks);
  return g;
}

function protractorShape(r) {
  const g = el('g');
  g.append(el('path', { d: `M${-r - 14} 0A${r + 14} ${r + 14} 0 0 1 ${r + 14} 0Z`, class: 'body' }));
  let d = '';
  for (let deg = 0; deg <= 180; deg += 1) {
    const a = (deg * Math.PI) / 180;
    const len = deg % 10 === 0 ? 30 : deg % 5 === 0 ? 20 : 11;
    const c = Math.cos(a);
    const s = -Math.sin(a);
    d += `M${(r * c).toFixed(1)} ${(r * s).toFixed(1)}L${((r - len) * c).toFixed(1)} ${((r - len) * s).toFixed(1)}`;
    if (deg % 10 === 0) {
      const tr = r - 48;
      g.append(text((tr * c).toFixed(1), (tr * s + 6).toFixed(1), String(180 - deg), 16));
    }
  }
  g.append(el('path', { d: `${d}M${-r} 0H${r}M0 0v-18M-12 0a12 12 0 0 1 24 0`, class: 'tick' }));
  return g;
}

/** The needle at (0, 0), the pencil at (size, 0), the hinge above their middle. */
function compassShape(size) {
  const g = el('g');
  const top = -Math.max(120, size * 0.6);
  g.append(el('path', { d: `M0 0L${size / 2} ${top}L${size} 0`, class: 'legs' }));
  g.append(el('circle', { cx: size / 2, cy: top, r: 22, class: 'body' }));
  g.append(el('path', { d: 'M-5 -30L0 0L5 -30Z', class: 'needle' }));
  g.append(el('path', { d: `M${size - 7} -34L${size} 0L${size + 7} -34Z`, class: 'pencil' }));
  g.append(el('path', { d: `M0 0H${size}`, class: 'radius' }));
  g.append(text(size / 2, 28, `${(size / CM).toFixed(1).replace('.', ',')} cm`, 18, { class: 'unit' }));
  return g;
}

const SHAPES = { ruler: rulerShape, square: squareShape, protractor: protractorShape,
  compass: compassShape };

/** Where the rotation knob sits, in the instrument's own coordinates. */
function knobOf(kind, size) {
  if (kind === 'ruler') return [size + 4, CM + 5];
  if (kind === 'square') return [size - 30, -24];
  if (kind === 'compass') return [size + 34, -58];
  return [size + 2, -30];
}

/** The straight edges one draws along, in the instrument's coordinates. */
function edgesOf(kind, size) {
  if (kind === 'ruler') return [[[-16, 0], [size + 16, 0]]];
  if (kind === 'square') return [[[0, 0], [size, 0]], [[0, 0], [0, -size * 0.62]]];
  if (kind === 'compass') return [];
  return [[[-size - 14, 0], [size + 14, 0]]];
}

/**
 * `ctx`: view, isTeacher(), pageId(), send(message), changed(), arc(points) (the compass
 * drew: one stroke to add), preview(item | null) (the arc being drawn).
 * Returns { el, toggle(kind), shown(kind), received(msg), load(list), guide(point), clear() }.
 */
export function instrumentLayer(ctx) {
  const { view } = ctx;
  const svg = el('svg', { class: 'instruments', 'aria-hidden': 'true' });
  view.sheet.append(svg);
  const placed = new Map(); // kind → {kind, page_id, x, y, angle, size, node}
  const lastSent = new Map();

  function fit() {
    const v = view.visible();
    svg.setAttribute('viewBox', `${v.x} ${v.y} ${v.w} ${v.h}`);
  }
  view.listeners.add(fit);
  fit();

  function draw(inst) {
    inst.node?.remove();
    const editable = ctx.isTeacher();
    const g = el('g', { class: `instrument instrument-${inst.kind}${editable ? ' editable' : ''}`,
      transform: `translate(${inst.x} ${inst.y}) rotate(${inst.angle})`, 'data-kind': inst.kind });
    inst.shape = SHAPES[inst.kind](inst.size);
    g.append(inst.shape);
    const [kx, ky] = knobOf(inst.kind, inst.size);
    const knob = el('g', { class: 'knob', transform: `translate(${kx} ${ky})` },
      el('circle', { r: 26 }), el('path', { d: 'M-10 -4a11 11 0 1 1 0 8M-10 -4v-8M-10 -4h8', class: 'arrow' }));
    const angle = text(0, 0, '', 18, { class: 'angle', x: kx, y: ky + (inst.kind === 'ruler' ? 52 : -40) });
    if (editable) g.append(knob);
    inst.knob = knob;
    let spread = null;
    if (editable && inst.kind === 'compass') {
      spread = el('rect', { x: inst.size - 18, y: -18, width: 36, height: 36, rx: 6, class: 'spread' });
      g.append(spread);
      inst.spread = spread;
    }
    g.append(angle);
    inst.node = g;
    inst.angleText = angle;
    g.style.display = inst.page_id === ctx.pageId() ? '' : 'none';
    svg.append(g);
    if (editable) wire(inst, g, knob, spread);
  }

  /** A new opening of the compass, drawn in place (the gesture goes on on the same node). */
  function reshape(inst) {
    const shape = SHAPES[inst.kind](inst.size);
    inst.shape.replaceWith(shape);
    inst.shape = shape;
    const [kx, ky] = knobOf(inst.kind, inst.size);
    inst.knob?.setAttribute('transform', `translate(${kx} ${ky})`);
    inst.spread?.setAttribute('x', String(inst.size - 18));
  }

  function place(inst) {
    inst.node.setAttribute('transform', `translate(${inst.x} ${inst.y}) rotate(${inst.angle})`);
  }

  function toBoard(e) {
    return view.toBoard(e.clientX, e.clientY);
  }

  function wire(inst, g, knob, spread) {
    let drag = null;
    const down = (mode) => (e) => {
      if (e.pointerType === 'mouse' && e.button !== 0) return;
      e.preventDefault();
      e.stopPropagation();
      g.setPointerCapture(e.pointerId);
      const p = toBoard(e);
      drag = { mode, id: e.pointerId, from: p, x: inst.x, y: inst.y };
      if (mode === 'turn') g.classList.add('turning');
    };
    knob.addEventListener('pointerdown', down('turn'));
    spread?.addEventListener('pointerdown', down('spread'));
    g.addEventListener('pointerdown', (e) => { if (!drag) down('move')(e); });
    g.addEventListener('pointermove', (e) => {
      if (!drag || e.pointerId !== drag.id) return;
      const p = toBoard(e);
      if (drag.mode === 'move') {
        inst.x = Math.max(-200, Math.min(PAGE_W + 200, drag.x + p[0] - drag.from[0]));
        inst.y = Math.max(-200, Math.min(PAGE_H + 200, drag.y + p[1] - drag.from[1]));
      } else if (drag.mode === 'spread') { // the compass's opening, and where its pencil is
        inst.size = Math.round(Math.max(CM / 2, Math.min(25 * CM, Math.hypot(p[0] - inst.x, p[1] - inst.y))));
        inst.angle = Math.round(((Math.atan2(p[1] - inst.y, p[0] - inst.x) * 180) / Math.PI + 360) % 360);
        reshape(inst);
      } else if (inst.kind === 'compass') { // turning the compass: its pencil draws
        const [kx, ky] = knobOf(inst.kind, inst.size);
        const base = (Math.atan2(ky, kx) * 180) / Math.PI;
        const a = (Math.atan2(p[1] - inst.y, p[0] - inst.x) * 180) / Math.PI - base;
        drag.arc ??= { last: inst.angle, sweep: 0, points: [pencil(inst, inst.angle)] };
        let step = a - drag.arc.last;
        step -= 360 * Math.round(step / 360); // the shortest way round
        drag.arc.sweep = Math.max(-360, Math.min(360, drag.arc.sweep + step));
        drag.arc.last = a;
        const from = drag.arc.start ?? (drag.arc.start = inst.angle);
        const n = Math.ceil(Math.abs(drag.arc.sweep));
        drag.arc.points = Array.from({ length: n + 1 }, (_, i) => pencil(inst, from + (drag.arc.sweep * i) / Math.max(1, n)));
        inst.angle = ((from + drag.arc.sweep) % 360 + 360) % 360;
        inst.angleText.textContent = `${Math.round(Math.abs(drag.arc.sweep))}°`;
        ctx.preview?.({ id: 'compass-arc', kind: 'stroke', page_id: inst.page_id, points: drag.arc.points });
      } else {
        const [kx, ky] = knobOf(inst.kind, inst.size);
        const base = (Math.atan2(ky, kx) * 180) / Math.PI;
        let a = (Math.atan2(p[1] - inst.y, p[0] - inst.x) * 180) / Math.PI - base;
        a = Math.round(a);
        const near15 = Math.round(a / 15) * 15;
        if (Math.abs(a - near15) <= 2) a = near15;
        inst.angle = ((a % 360) + 360) % 360;
        inst.angleText.textContent = `${Math.round(inst.angle > 180 ? 360 - inst.angle : inst.angle)}°`;
      }
      place(inst);
      send(inst);
    });
    const up = (e) => {
      if (!drag || e.pointerId !== drag.id) return;
      const arc = drag.arc;
      drag = null;
      if (arc) {
        ctx.preview?.(null);
        if (e.type === 'pointerup' && Math.abs(arc.sweep) >= 2) ctx.arc?.(arc.points);
      }
      g.classList.remove('turning');
      inst.angleText.textContent = '';
      send(inst, true);
    };
    g.addEventListener('pointerup', up);
    g.addEventListener('pointercancel', up);
  }

  /** Where the compass's pencil is when turned to `angle` degrees. */
  function pencil(inst, angle) {
    const a = (angle * Math.PI) / 180;
    return [Math.round((inst.x + inst.size * Math.cos(a)) * 10) / 10,
      Math.round((inst.y + inst.size * Math.sin(a)) * 10) / 10];
  }

  function message(inst, shown = true) {
    return { kind: inst.kind, page_id: inst.page_id, x: Math.round(inst.x * 10) / 10,
      y: Math.round(inst.y * 10) / 10, angle: inst.angle, size: inst.size, shown };
  }

  function send(inst, now = false) {
    if (!ctx.isTeacher()) return;
    const t = performance.now();
    const last = lastSent.get(inst.kind) ?? { t: 0 };
    clearTimeout(last.timer);
    const go = () => { lastSent.set(inst.kind, { t: performance.now() }); ctx.send(message(inst)); };
    if (now || t - last.t >= SEND_EVERY_MS) go();
    else lastSent.set(inst.kind, { ...last, timer: setTimeout(go, SEND_EVERY_MS - (t - last.t)) });
  }

  function show(kind, fields) {
    const inst = placed.get(kind) ?? { kind, ...DEFAULTS[kind] };
    Object.assign(inst, fields);
    placed.set(kind, inst);
    if (!inst.node || !svg.contains(inst.node)) draw(inst);
    else {
      if (inst.shape && fields.size && inst.kind === 'compass') reshape(inst);
      place(inst);
      refresh();
    }
    return inst;
  }

  function hide(kind) {
    const inst = placed.get(kind);
    if (!inst) return;
    inst.node?.remove();
    placed.delete(kind);
  }

  function refresh() {
    for (const inst of placed.values()) {
      if (inst.node) inst.node.style.display = inst.page_id === ctx.pageId() ? '' : 'none';
    }
    fit();
  }

  /** The teacher's button: lay the instrument on the current page, or put it away. */
  function toggle(kind) {
    const inst = placed.get(kind);
    if (inst && inst.page_id === ctx.pageId()) {
      hide(kind);
      ctx.send({ ...message(inst, false) });
    } else {
      const v = view.visible();
      const d = DEFAULTS[kind];
      const shown = show(kind, { page_id: ctx.pageId(), angle: 0,
        x: v.x + (d.x / PAGE_W) * v.w, y: v.y + (d.y / PAGE_H) * v.h });
      send(shown, true);
    }
    ctx.changed();
  }

  function received(msg) {
    if (!msg?.kind || !SHAPES[msg.kind]) return;
    if (msg.shown === false) hide(msg.kind);
    else show(msg.kind, { page_id: msg.page_id, x: msg.x, y: msg.y, angle: msg.angle, size: msg.size || DEFAULTS[msg.kind].size });
    ctx.changed();
  }

  /**
   * A stroke starting at `point`: if it is along an instrument's edge on this page, the
   * function that brings each of its points onto that edge; else null.
   */
  function guide([px, py]) {
    const reach = SNAP_PX * view.unitsPerPixel();
    for (const inst of placed.values()) {
      if (inst.page_id !== ctx.pageId()) continue;
      const a = (inst.angle * Math.PI) / 180;
      const cos = Math.cos(a);
      const sin = Math.sin(a);
      const toPage = ([x, y]) => [inst.x + x * cos - y * sin, inst.y + x * sin + y * cos];
      for (const [p0, p1] of edgesOf(inst.kind, inst.size)) {
        const [ax, ay] = toPage(p0);
        const [bx, by] = toPage(p1);
        const dx = bx - ax;
        const dy = by - ay;
        const len2 = dx * dx + dy * dy;
        const t = ((px - ax) * dx + (py - ay) * dy) / len2;
        if (t < -0.05 || t > 1.05) continue;
        const qx = ax + t * dx;
        const qy = ay + t * dy;
        if (Math.hypot(px - qx, py - qy) > reach) continue;
        return ([x, y]) => {
          const s = Math.max(0, Math.min(1, ((x - ax) * dx + (y - ay) * dy) / len2));
          return [Math.round((ax + s * dx) * 10) / 10, Math.round((ay + s * dy) * 10) / 10];
        };
      }
    }
    return null;
  }

  return {
    el: svg,
    toggle,
    received,
    guide,
    refresh,
    shown: (kind) => placed.get(kind)?.page_id === ctx.pageId(),
    load(list = []) {
      for (const kind of [...placed.keys()]) hide(kind);
      for (const msg of list) received(msg);
    },
    redraw() { for (const inst of placed.values()) draw(inst); },
    get placed() { return [...placed.values()].map((i) => message(i)); },
  };
}
