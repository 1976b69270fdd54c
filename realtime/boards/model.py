"""A board's pages and items, and the rules every op follows. No I/O.

`BoardState` is mutated in place for speed (a board may hold thousands of items and take
dozens of ops a second) but stays deterministic: the same events applied in the same order
give the same state on every process, which is what lets a board be rebuilt from a snapshot
plus the stream, and followed from several nodes.

Undo and redo are per author and held here: each applied op records its inverse on its
author's undo stack; undoing applies that inverse as an ordinary op.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import msgspec

from realtime.boards.ops import (
    BOXED,
    SEGMENTS,
    STROKES,
    Add,
    AddPage,
    Append,
    Clear,
    Item,
    ItemPatch,
    Move,
    MovePage,
    Noop,
    Op,
    Page,
    Remove,
    RemovePage,
    Restore,
    RestorePage,
    Update,
    UpdateMany,
    finite,
)
from realtime.errors import Refusal

Origin = Literal["op", "undo", "redo"]
UNDO_DEPTH = 100


class Limits(msgspec.Struct, frozen=True):
    """Published to clients at join, enforced here and by the service."""

    ops_per_second: int = 60
    ops_burst: int = 180
    points_per_stroke: int = 5_000
    points_per_append: int = 500
    items_per_page: int = 5_000
    pages_per_board: int = 100
    text_length: int = 2_000
    image_bytes: int = 2 * 1024 * 1024
    payload_bytes: int = 64 * 1024
    # `POST /api/boards/{id}/import`: a PDF or a photo, and how many pages one PDF may add
    import_bytes: int = 40 * 1024 * 1024
    import_pages: int = 60



@dataclass(frozen=True, slots=True)
class Actor:
    """Who applies an op, as far as the board's rules care."""

    id: int
    is_teacher: bool


@dataclass
class History:
    undo: list[Op] = field(default_factory=list)
    redo: list[Op] = field(default_factory=list)


@dataclass
class BoardState:
    pages: list[Page] = field(default_factory=list)
    items: dict[str, Item] = field(default_factory=dict)
    next_z: int = 1
    histories: dict[int, History] = field(default_factory=dict)
    page_counts: dict[str, int] = field(default_factory=dict)

    @classmethod
    def new(cls, first_page_id: str = "p1") -> BoardState:
        state = cls()
        state.pages.append(Page(id=first_page_id))
        state.page_counts[first_page_id] = 0
        return state

    # --- reading ---------------------------------------------------------------------------

    def page_index(self, page_id: str) -> int:
        for i, p in enumerate(self.pages):
            if p.id == page_id:
                return i
        raise Refusal("not_found", "Page introuvable.")

    def items_on(self, page_id: str) -> list[Item]:
        return sorted((i for i in self.items.values() if i.page_id == page_id), key=_z)

    def snapshot(self) -> dict[str, Any]:
        """What a client loads: pages in order, items in stacking order."""
        return {
            "pages": msgspec.to_builtins(self.pages),
            "items": msgspec.to_builtins(sorted(self.items.values(), key=_z)),
        }

    def dump(self) -> bytes:
        """Everything, undo stacks included, for the durable snapshot."""
        return msgspec.json.encode(
            {
                "pages": self.pages,
                "items": sorted(self.items.values(), key=_z),
                "next_z": self.next_z,
                "histories": {str(a): {"undo": h.undo, "redo": h.redo}
                              for a, h in self.histories.items() if h.undo or h.redo},
            }
        )

    @classmethod
    def load(cls, data: bytes) -> BoardState:
        raw = msgspec.json.decode(data, type=_Dump)
        state = cls(pages=list(raw.pages), items={i.id: i for i in raw.items}, next_z=raw.next_z)
        for author, h in raw.histories.items():
            state.histories[int(author)] = History(undo=list(h.undo), redo=list(h.redo))
        for p in state.pages:
            state.page_counts[p.id] = 0
        for i in state.items.values():
            state.page_counts[i.page_id] = state.page_counts.get(i.page_id, 0) + 1
        return state

    # --- applying --------------------------------------------------------------------------

    def check(self, op: Op, actor: Actor, limits: Limits) -> None:
        """Raise `Refusal` if `op` may not be applied now by `actor` (no change made)."""
        _CHECKS[type(op)](self, op, actor, limits)

    def apply(self, op: Op, actor: Actor, limits: Limits, origin: Origin = "op") -> Op:
        """Check and apply; return the op as everyone must apply it (server-filled fields)."""
        self.check(op, actor, limits)
        op = self._normalise(op, actor)
        history = self.histories.setdefault(actor.id, History())
        if origin != "op":  # take it off its stack, with any stale entries above it
            stack = history.undo if origin == "undo" else history.redo
            while stack and stack[-1] != op:
                stack.pop()
            if stack:
                stack.pop()
        inverse = _APPLY[type(op)](self, op)
        if _worth_keeping(inverse):
            assert inverse is not None
            if origin == "undo":
                history.redo.append(inverse)
            else:
                history.undo.append(inverse)
                del history.undo[:-UNDO_DEPTH]
                if origin == "op":
                    history.redo.clear()
        return op

    def apply_event(self, op: Op, actor: Actor, limits: Limits, origin: Origin) -> Op:
        """Apply an event from the stream: an op no longer valid becomes a Noop for all."""
        if isinstance(op, Noop):
            return op
        try:
            return self.apply(op, actor, limits, origin)
        except Refusal as r:
            return Noop(reason=r.code)

    def undo_candidate(self, actor: Actor, limits: Limits, redo: bool = False) -> Op:
        """The op an undo (or redo) would apply now: the top of the stack that still makes
        sense (an entry about an item someone else erased since is passed over)."""
        history = self.histories.get(actor.id)
        stack = (history.redo if redo else history.undo) if history else []
        for op in reversed(stack):
            try:
                self.check(op, actor, limits)
            except Refusal:
                continue
            return op
        raise Refusal("invalid", "Rien à rétablir." if redo else "Rien à annuler.")

    def _normalise(self, op: Op, actor: Actor) -> Op:
        if isinstance(op, Add):
            item = msgspec.structs.replace(op.item, author=actor.id, z=self.next_z)
            return Add(item=item)
        return op


# --- checks ------------------------------------------------------------------------------

def _own_or_teacher(item: Item, actor: Actor) -> None:
    if not actor.is_teacher and item.author != actor.id:
        raise Refusal("forbidden", "Vous ne pouvez modifier que vos propres tracés.")


def _teacher_only(actor: Actor, what: str) -> None:
    if not actor.is_teacher:
        raise Refusal("forbidden", f"Seul·e l'enseignant·e peut {what}.")


def _check_item(state: BoardState, item: Item, limits: Limits) -> None:
    state.page_index(item.page_id)
    if item.kind in STROKES:
        if not item.points or item.box is not None:
            raise Refusal("invalid", "Un tracé a besoin de points.")
        if len(item.points) > limits.points_per_append:
            raise Refusal("too_large", "Trop de points envoyés d'un coup.")
    elif item.kind in SEGMENTS:
        if not item.points or len(item.points) != 2:
            raise Refusal("invalid", "Une ligne ou une flèche a exactement deux points.")
    elif item.kind in BOXED:
        if item.box is None or item.points is not None:
            raise Refusal("invalid", "Cette forme a besoin d'un cadre (box).")
    if item.kind == "text":
        if item.text is None:
            raise Refusal("invalid", "Un texte a besoin de contenu.")
    if item.text is not None and (item.kind != "text" or len(item.text) > limits.text_length):
        if item.kind != "text":
            raise Refusal("invalid", "Seul un texte a un contenu.")
        raise Refusal("too_large", f"Texte trop long ({limits.text_length} caractères au plus).")
    if item.kind == "image":
        if not item.src or not item.src.startswith("/api/boards/"):
            raise Refusal("invalid", "Une image doit venir du serveur du tableau.")
    elif item.src is not None:
        raise Refusal("invalid", "Seule une image a une source.")
    if not finite(*(c for p in item.points or () for c in p)):
        raise Refusal("invalid", "Coordonnées invalides.")


def _check_add(state: BoardState, op: Add, actor: Actor, limits: Limits) -> None:
    if op.item.id in state.items:
        raise Refusal("conflict", "Cet élément existe déjà.")
    _check_item(state, op.item, limits)
    if state.page_counts.get(op.item.page_id, 0) >= limits.items_per_page:
        raise Refusal("too_large", f"Page pleine ({limits.items_per_page} éléments au plus).")


def _item(state: BoardState, item_id: str) -> Item:
    item = state.items.get(item_id)
    if item is None:
        raise Refusal("not_found", "Élément introuvable (déjà effacé ?).")
    return item


def _check_append(state: BoardState, op: Append, actor: Actor, limits: Limits) -> None:
    item = _item(state, op.item_id)
    if item.kind not in STROKES:
        raise Refusal("invalid", "On ne prolonge qu'un tracé à main levée.")
    if item.author != actor.id:
        raise Refusal("forbidden", "Ce tracé appartient à quelqu'un d'autre.")
    if not op.points:
        raise Refusal("invalid", "Aucun point à ajouter.")
    if len(op.points) > limits.points_per_append:
        raise Refusal("too_large", "Trop de points envoyés d'un coup.")
    if len(item.points or ()) + len(op.points) > limits.points_per_stroke:
        raise Refusal("too_large", f"Tracé trop long ({limits.points_per_stroke} points).")


def _check_update(state: BoardState, op: Update, actor: Actor, limits: Limits) -> None:
    item = _item(state, op.item_id)
    _own_or_teacher(item, actor)
    patch = op.set
    if patch.text is not None and item.kind != "text":
        raise Refusal("invalid", "Seul un texte a un contenu.")
    if patch.text is not None and len(patch.text) > limits.text_length:
        raise Refusal("too_large", f"Texte trop long ({limits.text_length} caractères au plus).")
    if patch.box is not None and item.kind not in BOXED:
        raise Refusal("invalid", "Cet élément n'a pas de cadre.")
    if patch.points is not None:
        if item.kind in BOXED:
            raise Refusal("invalid", "Cet élément n'a pas de points.")
        if item.kind in SEGMENTS and len(patch.points) != 2:
            raise Refusal("invalid", "Une ligne ou une flèche a exactement deux points.")
        if not patch.points or len(patch.points) > limits.points_per_stroke:
            raise Refusal("too_large", f"Tracé trop long ({limits.points_per_stroke} points).")
    if patch.font_size is not None and item.kind != "text":
        raise Refusal("invalid", "Seul un texte a une taille de police.")


def _check_update_many(state: BoardState, op: UpdateMany, actor: Actor, limits: Limits
                       ) -> None:
    if len({u.item_id for u in op.updates}) != len(op.updates):
        raise Refusal("invalid", "Un même élément deux fois dans une modification groupée.")
    for update in op.updates:
        _check_update(state, update, actor, limits)


def _check_move(state: BoardState, op: Move, actor: Actor, limits: Limits) -> None:
    for item_id in op.item_ids:
        _own_or_teacher(_item(state, item_id), actor)


def _check_remove(state: BoardState, op: Remove, actor: Actor, limits: Limits) -> None:
    found = [state.items[i] for i in op.item_ids if i in state.items]
    if not found:
        raise Refusal("not_found", "Élément introuvable (déjà effacé ?).")
    for item in found:
        _own_or_teacher(item, actor)


def _check_clear(state: BoardState, op: Clear, actor: Actor, limits: Limits) -> None:
    _teacher_only(actor, "effacer toute la page")
    state.page_index(op.page_id)


def _check_restore(state: BoardState, op: Restore, actor: Actor, limits: Limits) -> None:
    for item in op.items:
        state.page_index(item.page_id)


def _check_add_page(state: BoardState, op: AddPage, actor: Actor, limits: Limits) -> None:
    _teacher_only(actor, "ajouter une page")
    if any(p.id == op.page.id for p in state.pages):
        raise Refusal("conflict", "Cette page existe déjà.")
    if len(state.pages) >= limits.pages_per_board:
        raise Refusal("too_large", f"{limits.pages_per_board} pages au plus.")
    if op.page.background == "image" and not (op.page.image or "").startswith("/api/boards/"):
        raise Refusal("invalid", "Une page image doit venir du serveur du tableau.")


def _check_move_page(state: BoardState, op: MovePage, actor: Actor, limits: Limits) -> None:
    _teacher_only(actor, "réordonner les pages")
    state.page_index(op.page_id)


def _check_remove_page(state: BoardState, op: RemovePage, actor: Actor, limits: Limits) -> None:
    _teacher_only(actor, "supprimer une page")
    state.page_index(op.page_id)
    if len(state.pages) == 1:
        raise Refusal("invalid", "Un tableau garde au moins une page.")


def _check_restore_page(state: BoardState, op: RestorePage, actor: Actor, limits: Limits
                        ) -> None:
    if any(p.id == op.page.id for p in state.pages):
        raise Refusal("conflict", "Cette page existe déjà.")


def _check_noop(state: BoardState, op: Noop, actor: Actor, limits: Limits) -> None:
    raise Refusal("invalid", "Opération inconnue.")


_CHECKS: dict[type, Any] = {
    Add: _check_add, Append: _check_append, Update: _check_update, Move: _check_move,
    UpdateMany: _check_update_many,
    Remove: _check_remove, Clear: _check_clear, Restore: _check_restore,
    AddPage: _check_add_page, MovePage: _check_move_page, RemovePage: _check_remove_page,
    RestorePage: _check_restore_page, Noop: _check_noop,
}


# --- transitions (each returns the inverse op, or None) -----------------------------------

def _put(state: BoardState, item: Item) -> None:
    if item.points is not None:  # the state owns its lists: `append` extends them in place
        item = msgspec.structs.replace(item, points=list(item.points))
    if item.id not in state.items:
        state.page_counts[item.page_id] = state.page_counts.get(item.page_id, 0) + 1
    state.items[item.id] = item
    state.next_z = max(state.next_z, item.z + 1)


def _drop(state: BoardState, item_id: str) -> Item:
    item = state.items.pop(item_id)
    state.page_counts[item.page_id] -= 1
    return item


def _apply_add(state: BoardState, op: Add) -> Op:
    _put(state, op.item)
    return Remove(item_ids=[op.item.id])


def _apply_append(state: BoardState, op: Append) -> None:
    """In place: a stroke grows by a few points per op, and copying its whole list each time
    made drawing a long stroke quadratic. The list is the state's own (see `_put`)."""
    item = state.items[op.item_id]
    if item.points is None:
        state.items[op.item_id] = msgspec.structs.replace(item, points=list(op.points))
    else:
        item.points.extend(op.points)


def _apply_update(state: BoardState, op: Update) -> Op:
    item = state.items[op.item_id]
    changes = {k: v for k, v in msgspec.structs.asdict(op.set).items() if v is not None}
    if "points" in changes:
        changes["points"] = list(changes["points"])
    before = {k: getattr(item, k) for k in changes}
    state.items[op.item_id] = msgspec.structs.replace(item, **changes)
    return Update(item_id=op.item_id, set=msgspec.convert(before, ItemPatch))


def _apply_update_many(state: BoardState, op: UpdateMany) -> Op:
    inverses = [_apply_update(state, u) for u in op.updates]
    return UpdateMany(updates=[i for i in reversed(inverses) if isinstance(i, Update)])


def _shift(item: Item, dx: float, dy: float) -> Item:
    if item.points is not None:
        return msgspec.structs.replace(item, points=[(x + dx, y + dy) for x, y in item.points])
    if item.box is not None:
        box = msgspec.structs.replace(item.box, x=item.box.x + dx, y=item.box.y + dy)
        return msgspec.structs.replace(item, box=box)
    return item


def _apply_move(state: BoardState, op: Move) -> Op:
    for item_id in op.item_ids:
        state.items[item_id] = _shift(state.items[item_id], op.dx, op.dy)
    return Move(item_ids=op.item_ids, dx=-op.dx, dy=-op.dy)


def _apply_remove(state: BoardState, op: Remove) -> Op:
    removed = [_drop(state, i) for i in op.item_ids if i in state.items]
    return Restore(items=removed)


def _apply_clear(state: BoardState, op: Clear) -> Op:
    removed = [_drop(state, i.id) for i in state.items_on(op.page_id)]
    return Restore(items=removed)


def _apply_restore(state: BoardState, op: Restore) -> Op:
    for item in op.items:
        _put(state, item)
    return Remove(item_ids=[i.id for i in op.items]) if op.items else Noop(reason="empty")


def _apply_add_page(state: BoardState, op: AddPage) -> Op:
    index = len(state.pages) if op.index is None else min(op.index, len(state.pages))
    state.pages.insert(index, op.page)
    state.page_counts.setdefault(op.page.id, 0)
    return RemovePage(page_id=op.page.id)


def _apply_move_page(state: BoardState, op: MovePage) -> Op:
    old = state.page_index(op.page_id)
    page = state.pages.pop(old)
    state.pages.insert(min(op.index, len(state.pages)), page)
    return MovePage(page_id=op.page_id, index=old)


def _apply_remove_page(state: BoardState, op: RemovePage) -> Op:
    index = state.page_index(op.page_id)
    items = [_drop(state, i.id) for i in state.items_on(op.page_id)]
    page = state.pages.pop(index)
    state.page_counts.pop(page.id, None)
    return RestorePage(page=page, index=index, items=items)


def _apply_restore_page(state: BoardState, op: RestorePage) -> Op:
    state.pages.insert(min(op.index, len(state.pages)), op.page)
    state.page_counts.setdefault(op.page.id, 0)
    for item in op.items:
        _put(state, item)
    return RemovePage(page_id=op.page.id)


_APPLY: dict[type, Any] = {
    Add: _apply_add, Append: _apply_append, Update: _apply_update, Move: _apply_move,
    UpdateMany: _apply_update_many,
    Remove: _apply_remove, Clear: _apply_clear, Restore: _apply_restore,
    AddPage: _apply_add_page, MovePage: _apply_move_page, RemovePage: _apply_remove_page,
    RestorePage: _apply_restore_page,
}


def _worth_keeping(inverse: Op | None) -> bool:
    if inverse is None or isinstance(inverse, Noop):
        return False
    return not (isinstance(inverse, Restore) and not inverse.items)


def _z(item: Item) -> int:
    return item.z


class _History(msgspec.Struct):
    undo: list[Op] = []
    redo: list[Op] = []


class _Dump(msgspec.Struct):
    pages: list[Page]
    items: list[Item]
    next_z: int = 1
    histories: dict[str, _History] = {}
