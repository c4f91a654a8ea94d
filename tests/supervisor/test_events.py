"""The event bus: bounded per-subscriber buffers, loss markers, and never blocking supervision."""

from __future__ import annotations

from collections import deque
from typing import Any

import trio
import trio.testing
from hypothesis import given, settings
from hypothesis import strategies as st

from mcpvisor import EventsLost, LifecycleEvent, ServerState, Subscription
from mcpvisor.supervisor.events import EventBus


def event(i: int) -> LifecycleEvent:
    return LifecycleEvent(
        server=f"s{i}", old=ServerState.STARTING, new=ServerState.ACTIVE, reason="ready", at=i
    )


async def test_every_subscriber_sees_every_event_in_order() -> None:
    bus = EventBus()
    a, b = bus.open(16), bus.open(16)
    for i in range(5):
        bus.publish(event(i))
    bus.close()
    assert [e.server async for e in a] == [f"s{i}" for i in range(5)]  # type: ignore[union-attr]
    assert [e.server async for e in b] == [f"s{i}" for i in range(5)]  # type: ignore[union-attr]


async def test_a_stalled_subscriber_loses_oldest_events_then_gets_a_marker() -> None:
    bus = EventBus()
    slow = bus.open(3)
    for i in range(10):
        bus.publish(event(i))
    assert slow.pending == 3
    first = await slow.__anext__()
    assert first == EventsLost(7)
    rest = [await slow.__anext__() for _ in range(3)]
    assert [e.server for e in rest] == ["s7", "s8", "s9"]  # type: ignore[union-attr]


def test_losses_are_counted_at_each_publish_for_full_buffers_only() -> None:
    reported: list[int] = []
    bus = EventBus(on_lost=reported.append)
    slow, caught_up = bus.open(1), bus.open(1)
    for i in range(3):
        bus.publish(event(i))
    assert reported == [2, 2]
    assert caught_up._take() == EventsLost(2)
    assert caught_up._take() == event(2)
    bus.publish(event(3))
    assert reported == [2, 2, 1]
    assert slow._take() == EventsLost(3)


def test_a_reader_that_reads_part_of_its_backlog_is_still_seen_to_fill_up() -> None:
    reported: list[int] = []
    bus = EventBus(on_lost=reported.append)
    sub = bus.open(2)
    bus.publish(event(0))
    bus.publish(event(1))
    assert sub._take() == event(0)
    bus.publish(event(2))
    assert reported == []
    bus.publish(event(3))
    assert reported == [1]
    assert [sub._take(), sub._take(), sub._take()] == [EventsLost(1), event(2), event(3)]


async def test_a_reader_is_woken_by_a_publish() -> None:
    bus = EventBus()
    sub = bus.open(4)
    got: list[object] = []

    async def read_one() -> None:
        got.append(await sub.__anext__())

    async with trio.open_nursery() as nursery:
        nursery.start_soon(read_one)
        await trio.testing.wait_all_tasks_blocked()
        assert got == []
        bus.publish(event(1))
    assert got == [event(1)]


async def test_closing_ends_iteration_and_later_subscriptions_are_closed() -> None:
    bus = EventBus()
    sub = bus.open(4)
    bus.close()
    assert [e async for e in sub] == []
    late = bus.open(4)
    assert [e async for e in late] == []


async def test_a_discarded_subscription_stops_receiving() -> None:
    bus = EventBus()
    sub = bus.open(4)
    bus.discard(sub)
    bus.publish(event(1))
    assert len(bus) == 0
    assert [e async for e in sub] == []


class _QueueSubscriber:
    """The reference: a queue of its own per subscriber, discarding the oldest when full."""

    def __init__(self, buffer: int, closed: bool = False) -> None:
        self.buffer, self.queue, self.lost, self.closed = buffer, deque[LifecycleEvent](), 0, closed

    def push(self, e: LifecycleEvent) -> int:
        if self.closed:
            return 0
        full = len(self.queue) >= self.buffer
        if full:
            self.queue.popleft()
            self.lost += 1
        self.queue.append(e)
        return int(full)

    def take(self) -> LifecycleEvent | EventsLost | None:
        if self.lost:
            lost, self.lost = self.lost, 0
            return EventsLost(lost)
        return self.queue.popleft() if self.queue else None


_STEPS = st.lists(
    st.one_of(
        st.tuples(st.just("open"), st.integers(1, 3)),
        st.tuples(st.just("publish"), st.integers(1, 4)),
        st.tuples(st.just("take"), st.integers(0, 2), st.integers(1, 3)),
        st.tuples(st.just("take"), st.integers(0, 2), st.integers(1, 3)),
        st.tuples(st.just("discard"), st.integers(0, 2)),
    ),
    max_size=40,
)
"""Steps on one bus; the bus is closed after them, or before the last few."""


@settings(max_examples=400)
@given(_STEPS, st.integers(0, 5))
def test_the_shared_log_gives_every_subscriber_what_a_queue_of_its_own_would(
    steps: list[tuple[Any, ...]], close_before: int
) -> None:
    reported: list[int] = []
    bus = EventBus(on_lost=reported.append)
    subs: list[tuple[Subscription, _QueueSubscriber]] = []
    closed, published = False, 0
    steps = [*steps[: len(steps) - close_before], ("close",), *steps[len(steps) - close_before :]]
    for step, *args in steps:
        arg = args[0] if args else 0
        if step == "open":
            subs.append((bus.open(arg), _QueueSubscriber(arg, closed)))
        elif step == "publish":
            for _ in range(arg):
                e = event(published)
                published += 1
                expected = sum(ref.push(e) for _, ref in subs)
                bus.publish(e)
                assert (reported.pop() if reported else 0) == expected
        elif step == "close":
            bus.close()
            closed = True
            for _, ref in subs:
                ref.closed = True
        elif subs:
            sub, ref = subs[arg % len(subs)]
            if step == "take":
                for _ in range(args[1]):
                    assert sub._take() == ref.take()
            else:
                bus.discard(sub)
                ref.closed = True
        for sub, ref in subs:
            assert sub.pending == len(ref.queue)
    for sub, ref in subs:
        bus.discard(sub)
        while (item := ref.take()) is not None:
            assert sub._take() == item
        assert sub._take() is None


async def test_a_reader_woken_by_closing_reads_what_it_held_then_stops() -> None:
    bus = EventBus()
    sub = bus.open(2)
    got: list[object] = []

    async def read_all() -> None:
        got.extend([e async for e in sub])

    async with trio.open_nursery() as nursery:
        nursery.start_soon(read_all)
        await trio.testing.wait_all_tasks_blocked()
        for i in range(3):
            bus.publish(event(i))
        bus.discard(sub)
    # Nothing ran between the three publishes and the discard: the buffer of two kept the last.
    assert got == [EventsLost(1), event(1), event(2)]


async def test_a_reader_cancelled_as_it_reads_takes_nothing() -> None:
    bus = EventBus()
    sub = bus.open(4)
    bus.publish(event(1))
    with trio.CancelScope() as scope:
        scope.cancel()
        await sub.__anext__()
    assert scope.cancelled_caught
    assert sub.pending == 1
    assert await sub.__anext__() == event(1)
