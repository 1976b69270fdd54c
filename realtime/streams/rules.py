"""The resume rules both stores share: pure, so they are the same everywhere."""

from __future__ import annotations

from realtime.streams.base import Replay, Reset, StreamEvent


def plan_resume(
    epoch: str | None, after: int, *, current: str, head: int, trimmed_to: int, limit: int
) -> Replay | Reset | None:
    """A final answer, or None: read the events (after, head] from history."""
    if (epoch is None and after != 0) or (epoch is not None and epoch != current):
        return Reset(epoch=current, head=head, reason="epoch_changed")
    if after > head:
        return Reset(epoch=current, head=head, reason="ahead_of_stream")
    if after == head:
        return Replay(epoch=current, head=head, events=[])
    if after < trimmed_to:
        return Reset(epoch=current, head=head, reason="history_trimmed")
    if head - after > limit:
        return Reset(epoch=current, head=head, reason="too_many")
    return None


def complete_replay(
    events: list[StreamEvent], after: int, *, current: str, head: int
) -> Replay | Reset:
    """Every seq from after+1 to head, or a Reset: a trim that raced the read must not turn
    into a partial replay."""
    if [e.seq for e in events] != list(range(after + 1, head + 1)):
        return Reset(epoch=current, head=head, reason="history_trimmed")
    return Replay(epoch=current, head=head, events=events)
