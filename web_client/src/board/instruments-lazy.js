// The geometry instruments load on first use: their drawing code (instruments.js) is a chunk of
// its own, fetched when the teacher takes one out or when one is shown to the class. Until
// then no instrument is on the sheet: nothing guides a stroke and nothing is shown.

/** The same interface as `instrumentLayer(ctx)`, the layer built on first need. */
export function lazyInstruments(ctx) {
  let layer = null;
  let loading = null;
  const waiting = [];
  const load = () => {
    loading ??= import('./instruments.js').then(({ instrumentLayer }) => {
      layer = instrumentLayer(ctx);
      for (const fn of waiting.splice(0)) fn(layer);
    }).catch((err) => { loading = null; console.error(err); });
    return loading;
  };
  const later = (fn) => { if (layer) fn(layer); else { waiting.push(fn); load(); } };
  return {
    toggle: (kind) => later((l) => l.toggle(kind)),
    received: (msg) => later((l) => l.received(msg)),
    load: (list = []) => { if (layer || list.length) later((l) => l.load(list)); },
    guide: (point) => (layer ? layer.guide(point) : null),
    refresh: () => layer?.refresh(),
    redraw: () => layer?.redraw(),
    shown: (kind) => (layer ? layer.shown(kind) : false),
    get placed() { return layer ? layer.placed : []; },
    get el() { return layer?.el; },
    ready: load,
  };
}
