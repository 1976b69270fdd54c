"""The board's rules, pure: no loop, no socket, no database."""

from __future__ import annotations

import msgspec
import pytest

from realtime.boards.model import Actor, BoardState, Limits
from realtime.boards.ops import (
    Add,
    AddPage,
    Append,
    Box,
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
    Style,
    Update,
    UpdateMany,
)
from realtime.errors import Refusal

TEACHER = Actor(id=1, is_teacher=True)
ALICE = Actor(id=2, is_teacher=False)
BOB = Actor(id=3, is_teacher=False)
LIMITS = Limits()


def stroke(item_id: str, page: str = "p1", points: int = 3) -> Item:
    return Item(id=item_id, kind="stroke", page_id=page,
                points=[(float(i), float(i)) for i in range(points)])


def rect(item_id: str, page: str = "p1") -> Item:
    return Item(id=item_id, kind="rect", page_id=page, box=Box(x=10, y=10, w=100, h=50))


def test_add_sets_author_and_z() -> None:
    s = BoardState.new()
    out = s.apply(Add(item=stroke("a")), ALICE, LIMITS)
    assert isinstance(out, Add) and out.item.author == 2 and out.item.z == 1
    out2 = s.apply(Add(item=rect("b")), TEACHER, LIMITS)
    assert out2.item.z == 2
    assert [i.id for i in s.items_on("p1")] == ["a", "b"]


def test_append_grows_only_the_authors_stroke() -> None:
    s = BoardState.new()
    s.apply(Add(item=stroke("a")), ALICE, LIMITS)
    s.apply(Append(item_id="a", points=[(9, 9), (10, 10)]), ALICE, LIMITS)
    assert len(s.items["a"].points) == 5
    with pytest.raises(Refusal) as r:
        s.apply(Append(item_id="a", points=[(1, 1)]), BOB, LIMITS)
    assert r.value.code == "forbidden"
    with pytest.raises(Refusal) as r:
        s.apply(Append(item_id="a", points=[(1, 1)]), TEACHER, LIMITS)
    assert r.value.code == "forbidden"  # even the teacher does not write in someone's stroke


@pytest.mark.parametrize(("item", "code"), [
    (Item(id="x", kind="stroke", page_id="p1"), "invalid"),
    (Item(id="x", kind="line", page_id="p1", points=[(0, 0)]), "invalid"),
    (Item(id="x", kind="rect", page_id="p1"), "invalid"),
    (Item(id="x", kind="text", page_id="p1", box=Box(x=0, y=0, w=1, h=1)), "invalid"),
    (Item(id="x", kind="text", page_id="p1", box=Box(x=0, y=0, w=1, h=1), text="é" * 2001),
     "too_large"),
    (Item(id="x", kind="image", page_id="p1", box=Box(x=0, y=0, w=1, h=1),
          src="https://ailleurs.example/x.png"), "invalid"),
    (Item(id="x", kind="stroke", page_id="nope", points=[(0, 0)]), "not_found"),
    (Item(id="x", kind="stroke", page_id="p1", points=[(0.0, 0.0)] * 501), "too_large"),
])
def test_invalid_items_change_nothing(item: Item, code: str) -> None:
    s = BoardState.new()
    before = s.dump()
    with pytest.raises(Refusal) as r:
        s.apply(Add(item=item), TEACHER, LIMITS)
    assert r.value.code == code and r.value.message
    assert s.dump() == before


def test_wire_decoding_refuses_bad_shapes() -> None:
    for raw in (b'{"type":"add","item":{"id":"a b","kind":"stroke","page_id":"p1"}}',
                b'{"type":"add","item":{"id":"a","kind":"laser","page_id":"p1"}}',
                b'{"type":"add","item":{"id":"a","kind":"rect","page_id":"p1",'
                b'"style":{"color":"red"}}}',
                b'{"type":"explode"}',
                b'{"type":"append","item_id":"a","points":[[1e9,0]]}',
                b'{"type":"remove","item_ids":[]}',
                b'{"type":"clear","page_id":"p1","extra":1}'):
        with pytest.raises(msgspec.ValidationError):
            msgspec.json.decode(raw, type=Op)


def test_limits_on_stroke_length_and_page_size() -> None:
    limits = Limits(points_per_stroke=5, items_per_page=2)
    s = BoardState.new()
    s.apply(Add(item=stroke("a", points=3)), ALICE, limits)
    with pytest.raises(Refusal) as r:
        s.apply(Append(item_id="a", points=[(1, 1)] * 3), ALICE, limits)
    assert r.value.code == "too_large"
    s.apply(Add(item=rect("b")), ALICE, limits)
    with pytest.raises(Refusal) as r:
        s.apply(Add(item=rect("c")), ALICE, limits)
    assert r.value.code == "too_large"


def test_students_touch_only_their_own_items() -> None:
    s = BoardState.new()
    s.apply(Add(item=rect("t")), TEACHER, LIMITS)
    s.apply(Add(item=rect("a")), ALICE, LIMITS)
    for op in (Remove(item_ids=["t"]), Move(item_ids=["t"], dx=1, dy=1),
               Update(item_id="t", set=ItemPatch(style=Style(color="#ff0000")))):
        with pytest.raises(Refusal) as r:
            s.apply(op, ALICE, LIMITS)
        assert r.value.code == "forbidden"
    s.apply(Remove(item_ids=["a"]), ALICE, LIMITS)
    s.apply(Move(item_ids=["t"], dx=5, dy=0), TEACHER, LIMITS)
    assert s.items["t"].box.x == 15


def test_only_the_teacher_clears_and_manages_pages() -> None:
    s = BoardState.new()
    for op in (Clear(page_id="p1"), AddPage(page=Page(id="p2")), RemovePage(page_id="p1"),
               MovePage(page_id="p1", index=0)):
        with pytest.raises(Refusal) as r:
            s.apply(op, ALICE, LIMITS)
        assert r.value.code == "forbidden"


def test_undo_of_a_clear_restores_the_page_exactly() -> None:
    s = BoardState.new()
    s.apply(Add(item=stroke("a")), ALICE, LIMITS)
    s.apply(Add(item=rect("b")), TEACHER, LIMITS)
    s.apply(Add(item=stroke("c")), BOB, LIMITS)
    before = s.snapshot()
    s.apply(Clear(page_id="p1"), TEACHER, LIMITS)
    assert s.items == {}
    undo = s.undo_candidate(TEACHER, LIMITS)
    assert isinstance(undo, Restore)
    s.apply(undo, TEACHER, LIMITS, origin="undo")
    assert s.snapshot() == before  # same items, same stacking order
    redo = s.undo_candidate(TEACHER, LIMITS, redo=True)
    s.apply(redo, TEACHER, LIMITS, origin="redo")
    assert s.items == {}


def test_undo_redo_are_per_author() -> None:
    s = BoardState.new()
    s.apply(Add(item=stroke("a")), ALICE, LIMITS)
    s.apply(Append(item_id="a", points=[(5, 5)]), ALICE, LIMITS)
    s.apply(Add(item=stroke("b")), BOB, LIMITS)
    undo = s.undo_candidate(ALICE, LIMITS)
    assert undo == Remove(item_ids=["a"])  # the whole stroke, appends included
    s.apply(undo, ALICE, LIMITS, origin="undo")
    assert set(s.items) == {"b"}
    redo = s.undo_candidate(ALICE, LIMITS, redo=True)
    s.apply(redo, ALICE, LIMITS, origin="redo")
    assert len(s.items["a"].points) == 4  # restored with its appended points
    with pytest.raises(Refusal):
        s.undo_candidate(TEACHER, LIMITS)


def test_new_op_clears_redo_and_stale_entries_are_passed_over() -> None:
    s = BoardState.new()
    s.apply(Add(item=rect("a")), ALICE, LIMITS)
    s.apply(Add(item=rect("b")), ALICE, LIMITS)
    s.apply(Remove(item_ids=["b"]), TEACHER, LIMITS)  # the teacher erases Alice's "b"
    undo = s.undo_candidate(ALICE, LIMITS)
    assert undo == Remove(item_ids=["a"])  # "remove b" no longer makes sense
    s.apply(undo, ALICE, LIMITS, origin="undo")
    assert s.histories[ALICE.id].undo == []
    s.apply(Add(item=rect("c")), ALICE, LIMITS)
    assert s.histories[ALICE.id].redo == []


def test_update_and_its_undo() -> None:
    s = BoardState.new()
    s.apply(Add(item=Item(id="t", kind="text", page_id="p1", box=Box(x=0, y=0, w=10, h=10),
                          text="Leçon", font_size=24)), TEACHER, LIMITS)
    s.apply(Update(item_id="t", set=ItemPatch(text="Leçon n°2 : les fractions")), TEACHER,
            LIMITS)
    assert s.items["t"].text == "Leçon n°2 : les fractions"
    s.apply(s.undo_candidate(TEACHER, LIMITS), TEACHER, LIMITS, origin="undo")
    assert s.items["t"].text == "Leçon"


def test_pages_add_move_remove_and_undo() -> None:
    s = BoardState.new()
    s.apply(AddPage(page=Page(id="p2", background="seyes")), TEACHER, LIMITS)
    s.apply(AddPage(page=Page(id="p3", background="squares"), index=0), TEACHER, LIMITS)
    assert [p.id for p in s.pages] == ["p3", "p1", "p2"]
    s.apply(MovePage(page_id="p3", index=2), TEACHER, LIMITS)
    assert [p.id for p in s.pages] == ["p1", "p2", "p3"]
    s.apply(Add(item=rect("r", page="p2")), ALICE, LIMITS)
    s.apply(RemovePage(page_id="p2"), TEACHER, LIMITS)
    assert [p.id for p in s.pages] == ["p1", "p3"] and "r" not in s.items
    s.apply(s.undo_candidate(TEACHER, LIMITS), TEACHER, LIMITS, origin="undo")
    assert [p.id for p in s.pages] == ["p1", "p2", "p3"] and "r" in s.items
    with pytest.raises(Refusal):
        for p in list(s.pages):
            s.apply(RemovePage(page_id=p.id), TEACHER, LIMITS)


def test_dump_and_load_round_trip_with_history() -> None:
    s = BoardState.new()
    s.apply(Add(item=stroke("a")), ALICE, LIMITS)
    s.apply(AddPage(page=Page(id="p2")), TEACHER, LIMITS)
    s.apply(Clear(page_id="p1"), TEACHER, LIMITS)
    loaded = BoardState.load(s.dump())
    assert loaded.dump() == s.dump()
    assert loaded.undo_candidate(TEACHER, LIMITS) == s.undo_candidate(TEACHER, LIMITS)


def test_replaying_events_gives_the_same_state_and_stale_ops_become_noops() -> None:
    live = BoardState.new()
    events = []
    for op, actor in ((Add(item=rect("a")), ALICE), (Add(item=stroke("b")), TEACHER),
                      (Remove(item_ids=["a"]), ALICE)):
        events.append((live.apply(op, actor, LIMITS), actor))
    replica = BoardState.new()
    for op, actor in events:
        replica.apply_event(op, actor, LIMITS, "op")
    assert replica.dump() == live.dump()
    # Sent when valid, applied after another node's op erased its target: a no-op for all.
    assert isinstance(replica.apply_event(Remove(item_ids=["a"]), ALICE, LIMITS, "op"), Noop)


def test_append_extends_the_states_own_list_and_undo_still_restores() -> None:
    """Appends grow the stroke in place (linear, not a copy per op) without touching the
    op the stroke came from, and an undone, redone stroke keeps its points."""
    state = BoardState.new()
    add = Add(item=stroke("s", points=2))
    state.apply(add, TEACHER, LIMITS)
    for i in range(400):
        state.apply(Append(item_id="s", points=[(i, i), (i, i + 1)]), TEACHER, LIMITS)
    assert len(state.items["s"].points) == 802
    assert len(add.item.points) == 2  # the op's own list was copied, not extended
    points = list(state.items["s"].points)
    undo = state.undo_candidate(TEACHER, LIMITS)
    state.apply(undo, TEACHER, LIMITS, "undo")
    assert "s" not in state.items
    redo = state.undo_candidate(TEACHER, LIMITS, redo=True)
    state.apply(redo, TEACHER, LIMITS, "redo")
    assert state.items["s"].points == points
    state.apply(Append(item_id="s", points=[(1, 1)]), TEACHER, LIMITS)
    assert len(redo.items[0].points) == 802  # the history's copy is not the live list
    assert BoardState.load(state.dump()).snapshot() == state.snapshot()


def test_update_many_is_one_change_and_one_undo() -> None:
    """A selection recoloured (or resized) at once: one op, one undo brings every item back;
    a pupil may not slip someone else's item into it."""
    s = BoardState.new()
    s.apply(Add(item=rect("r")), TEACHER, LIMITS)
    s.apply(Add(item=stroke("s")), ALICE, LIMITS)
    green = Style(color="#15803d")
    s.apply(UpdateMany(updates=[Update(item_id="r", set=ItemPatch(style=green)),
                                Update(item_id="s", set=ItemPatch(style=green))]),
            TEACHER, LIMITS)
    assert s.items["r"].style.color == s.items["s"].style.color == "#15803d"
    undo = s.undo_candidate(TEACHER, LIMITS)
    assert isinstance(undo, UpdateMany) and len(undo.updates) == 2
    s.apply(undo, TEACHER, LIMITS, origin="undo")
    assert s.items["r"].style.color == s.items["s"].style.color == "#1a1a1a"
    with pytest.raises(Refusal) as refused:
        s.apply(UpdateMany(updates=[Update(item_id="s", set=ItemPatch(style=green)),
                                    Update(item_id="r", set=ItemPatch(style=green))]),
                ALICE, LIMITS)
    assert refused.value.code == "forbidden"
    assert s.items["s"].style.color == "#1a1a1a"  # nothing applied
    with pytest.raises(Refusal):
        s.apply(UpdateMany(updates=[Update(item_id="s", set=ItemPatch(style=green))] * 2),
                TEACHER, LIMITS)
    # Through the wire shape, as a client sends it.
    op = msgspec.convert({"type": "update_many", "updates": [
        {"type": "update", "item_id": "r", "set": {"box": {"x": 1, "y": 2, "w": 3, "h": 4}}}]},
        Op)
    s.apply(op, TEACHER, LIMITS)
    assert s.items["r"].box == Box(x=1, y=2, w=3, h=4)
