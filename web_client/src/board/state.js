// The board as this page knows it: ordered pages, and items by id (a Map keeps their order,
// which is the drawing order). Only ops change it (docs/boards.md), each op the same way on
// every client, so every screen converges on the server's truth.

/**
 * What an op changed, for the renderer:
 * `added` items new on top of their page, `grown` strokes that got points at their end,
 * `redraw` pages whose whole picture must be redrawn, `pages` whether the page list changed.
 */
export class Change {
  constructor() {
    this.added = [];
    this.grown = [];
    this.redraw = new Set();
    this.pages = false;
  }

}

export class BoardState {
  constructor() {
    this.pages = [];
    this.items = new Map();
  }

  /** Replace everything with a snapshot from the server. */
  load({ pages = [], items = [] } = {}) {
    this.pages = pages.map((p) => ({ ...p }));
    this.items = new Map(items.map((item) => [item.id, item]));
  }

  page(id) {
    return this.pages.find((p) => p.id === id) ?? null;
  }

  pageIndex(id) {
    return this.pages.findIndex((p) => p.id === id);
  }

  /** The items of one page, in drawing order. */
  itemsOn(pageId) {
    const out = [];
    for (const item of this.items.values()) if (item.page_id === pageId) out.push(item);
    return out;
  }

  countOn(pageId) {
    let n = 0;
    for (const item of this.items.values()) if (item.page_id === pageId) n += 1;
    return n;
  }

  /** Apply one op; returns what changed. Unknown items are ignored (already gone). */
  apply(op) {
    const change = new Change();
    const handler = APPLY[op?.type];
    if (handler) handler(this, op, change);
    return change;
  }
}

function put(state, item, change) {
  const old = state.items.get(item.id);
  state.items.set(item.id, item);
  if (old) { // an add for an id we have replaces it (e.g. our own echo)
    change.redraw.add(old.page_id);
    change.redraw.add(item.page_id);
  } else {
    change.added.push(item);
  }
}

function removeItems(state, ids, change) {
  for (const id of ids) {
    const item = state.items.get(id);
    if (!item) continue;
    state.items.delete(id);
    change.redraw.add(item.page_id);
  }
}

function insertPage(state, page, index) {
  const at = state.pageIndex(page.id);
  if (at >= 0) state.pages.splice(at, 1);
  const i = Number.isInteger(index) ? Math.max(0, Math.min(index, state.pages.length))
    : state.pages.length;
  state.pages.splice(i, 0, { ...page });
}

/** Items brought back (undo) go back to their place in the stacking order (`z`). */
function restack(state) {
  const z = (item) => item.z ?? Infinity; // ours not yet echoed: on top
  const sorted = [...state.items.values()].sort((a, b) => z(a) - z(b));
  state.items = new Map(sorted.map((item) => [item.id, item]));
}

const shift = (item, dx, dy) => {
  const moved = { ...item };
  if (item.points) moved.points = item.points.map(([x, y]) => [x + dx, y + dy]);
  if (item.box) moved.box = { ...item.box, x: item.box.x + dx, y: item.box.y + dy };
  return moved;
};

const APPLY = {
  add(state, { item }, change) {
    if (item?.id) put(state, { ...item, points: item.points?.slice() }, change);
  },
  append(state, { item_id: id, points }, change) {
    const item = state.items.get(id);
    if (!item || !Array.isArray(points)) return;
    const from = item.points?.length ?? 0;
    item.points = (item.points ?? []).concat(points);
    change.grown.push({ item, from });
  },
  update(state, { item_id: id, set = {} }, change) {
    const item = state.items.get(id);
    if (!item) return;
    const next = { ...item, ...set };
    if (set.style) next.style = { ...item.style, ...set.style };
    state.items.set(id, next);
    change.redraw.add(item.page_id);
  },
  update_many(state, { updates = [] }, change) { // a selection resized or restyled at once
    for (const update of updates) APPLY.update(state, update, change);
  },
  move(state, { item_ids: ids = [], dx = 0, dy = 0 }, change) {
    for (const id of ids) {
      const item = state.items.get(id);
      if (!item) continue;
      state.items.set(id, shift(item, dx, dy));
      change.redraw.add(item.page_id);
    }
  },
  remove(state, { item_ids: ids = [] }, change) {
    removeItems(state, ids, change);
  },
  clear(state, { page_id: pageId }, change) {
    for (const [id, item] of state.items) if (item.page_id === pageId) state.items.delete(id);
    change.redraw.add(pageId);
  },
  restore(state, { items = [] }, change) {
    for (const item of items) {
      state.items.set(item.id, { ...item });
      change.redraw.add(item.page_id);
    }
    restack(state);
  },
  add_page(state, { page, index }, change) {
    if (!page?.id) return;
    insertPage(state, page, index);
    change.pages = true;
    change.redraw.add(page.id);
  },
  move_page(state, { page_id: id, index }, change) {
    const page = state.page(id);
    if (!page) return;
    insertPage(state, page, index);
    change.pages = true;
  },
  remove_page(state, { page_id: id }, change) {
    const at = state.pageIndex(id);
    if (at < 0) return;
    state.pages.splice(at, 1);
    for (const [itemId, item] of state.items) if (item.page_id === id) state.items.delete(itemId);
    change.pages = true;
    change.redraw.add(id);
  },
  restore_page(state, { page, index, items = [] }, change) {
    if (!page?.id) return;
    insertPage(state, page, index);
    for (const item of items) state.items.set(item.id, { ...item });
    restack(state);
    change.pages = true;
    change.redraw.add(page.id);
  },
};
