"""The event bus: bounded per-subscriber buffers, loss markers, and never blocking supervision."""

from __future__ import annotations

import trio
import trio.testing

from mcpvisor import EventsLost, LifecycleEvent, ServerState
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
