// Toolbar icons: small inline SVGs (no network), hidden from screen readers — every button
// has its name in text.

const NS = 'http://www.w3.org/2000/svg';

const PATHS = {
  pen: 'M4 20l4-1 11-11-3-3L5 16l-1 4z M14 6l3 3',
  highlighter: 'M9 15l-3 3v2h5l2-2 M9 15l7-11 4 3-7 11z M9 15l4 3',
  line: 'M5 19L19 5',
  arrow: 'M5 19L19 5 M10 5h9v9',
  rect: 'M4 6h16v12H4z',
  ellipse: 'M12 5c5 0 9 3 9 7s-4 7-9 7-9-3-9-7 4-7 9-7z',
  text: 'M5 6V4h14v2 M12 4v16 M9 20h6',
  eraser: 'M8 20h12 M4 15l9-10 7 7-7 8H9z M9 10l6 6',
  laser: 'M12 12m-3 0a3 3 0 1 0 6 0a3 3 0 1 0-6 0 M12 2v4 M12 18v4 M2 12h4 M18 12h4',
  pan: 'M12 3v18 M3 12h18 M12 3l-3 3 M12 3l3 3 M12 21l-3-3 M12 21l3-3 M3 12l3-3 M3 12l3 3 M21 12l-3-3 M21 12l-3 3',
  undo: 'M9 14L4 9l5-5 M4 9h10a6 6 0 0 1 0 12h-3',
  redo: 'M15 14l5-5-5-5 M20 9H10a6 6 0 0 0 0 12h3',
  previous: 'M15 5l-7 7 7 7',
  next: 'M9 5l7 7-7 7',
  addPage: 'M6 3h8l4 4v14H6z M12 10v7 M8.5 13.5h7',
  zoomIn: 'M10 10m-6 0a6 6 0 1 0 12 0a6 6 0 1 0-12 0 M20 20l-5.5-5.5 M7 10h6 M10 7v6',
  zoomOut: 'M10 10m-6 0a6 6 0 1 0 12 0a6 6 0 1 0-12 0 M20 20l-5.5-5.5 M7 10h6',
  fullscreen: 'M4 9V4h5 M20 9V4h-5 M4 15v5h5 M20 15v5h-5',
  pen_hand: 'M4 20l4-1 11-11-3-3L5 16l-1 4z M3 3l5 5',
  follow: 'M2 12s4-7 10-7 10 7 10 7-4 7-10 7S2 12 2 12z M12 12m-3 0a3 3 0 1 0 6 0a3 3 0 1 0-6 0',
  lock: 'M6 11h12v10H6z M8 11V7a4 4 0 0 1 8 0v4',
  back: 'M11 5l-7 7 7 7 M4 12h16',
  chat: 'M4 5h16v11H10l-4 4v-4H4z M8 9h8 M8 12h5',
  select: 'M5 3l5 16 2.5-6.5L19 10z M13 13l6 6',
  image: 'M3 5h18v14H3z M3 16l5-5 4 4 3-3 6 6 M15.5 9.5m-1.5 0a1.5 1.5 0 1 0 3 0a1.5 1.5 0 1 0-3 0',
  ruler: 'M2 15L15 2l7 7L9 22z M6 11l2 2 M9 8l3 3 M12 5l2 2 M14 17l-2-2 M17 14l-3-3',
  square: 'M4 20V4l16 16z M8 16v-3h3',
  protractor: 'M2 18a10 10 0 0 1 20 0z M12 18l5-7 M12 8v2 M6.3 10.3l1.4 1.4 M17.7 10.3l-1.4 1.4',
  import: 'M6 3h8l4 4v14H6z M12 9v8 M8.5 13.5L12 17l3.5-3.5',
  pages: 'M4 4h7v7H4z M13 4h7v7h-7z M4 13h7v7H4z M13 13h7v7h-7z',
  session: 'M4 6h16 M4 12h16 M4 18h16',
  compass: 'M12 3v3 M12 6l-6 15 M12 6l6 15 M12 6m-2 0a2 2 0 1 0 4 0a2 2 0 1 0-4 0 M8 15h8',
  up: 'M12 19V5 M6 11l6-6 6 6',
  down: 'M12 5v14 M6 13l6 6 6-6',
  trash: 'M4 7h16 M9 7V4h6v3 M6 7l1 13h10l1-13 M10 11v6 M14 11v6',
};

export function icon(name) {
  const svg = document.createElementNS(NS, 'svg');
  svg.setAttribute('viewBox', '0 0 24 24');
  svg.setAttribute('aria-hidden', 'true');
  svg.setAttribute('focusable', 'false');
  svg.setAttribute('class', 'icon');
  const path = document.createElementNS(NS, 'path');
  path.setAttribute('d', PATHS[name] ?? '');
  svg.append(path);
  return svg;
}
