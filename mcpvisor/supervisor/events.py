"""Fan-out of lifecycle events to subscribers that may be slow.

Supervision must never wait for a subscriber, so each one gets a bounded buffer: when it
falls behind, its oldest events are discarded and the next thing it reads is an
:class:`EventsLost` marker saying how many.
"""

from __future__ import annotations

from collections import deque
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING

import attrs
import trio

from mcpvisor.specs.errors import UsageError

if TYPE_CHECKING:
    from mcpvisor.supervisor.lifecycle import LifecycleEvent


@attrs.frozen
class EventsLost:
    """A subscriber fell behind and ``count`` events were discarded before this point."""

    count: int


def check_buffer(buffer: object) -> int:
    """``buffer`` if it is a whole number of events >= 1; else :class:`UsageError`."""
    if isinstance(buffer, bool) or not isinstance(buffer, int):
        raise UsageError("buffer", f"must be a whole number of events, not {type(buffer).__name__}")
    if buffer < 1:
        raise UsageError("buffer", "must be at least 1 (an event that cannot be held is lost)")
    return buffer


class Subscription(AsyncIterator["LifecycleEvent | EventsLost"]):
    """One subscriber's view of the event stream; iterate it with ``async for``.

    Iteration ends when the subscription or the supervisor is closed.
    """

    def __init__(self, buffer: int) -> None:
        self._buffer = check_buffer(buffer)
        self._queue: deque[LifecycleEvent] = deque()
        self._lost = 0
        self._closed = False
        self._wakeup = trio.Event()

    def _push(self, event: LifecycleEvent) -> bool:
        """Buffer ``event``; True if that discarded the oldest one."""
        if self._closed:
            return False
        lost = len(self._queue) >= self._buffer
        if lost:
            self._queue.popleft()
            self._lost += 1
        self._queue.append(event)
        self._wakeup.set()
        return lost

    def _close(self) -> None:
        self._closed = True
        self._wakeup.set()

    @property
    def pending(self) -> int:
        """Events buffered and not yet read."""
        return len(self._queue)

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> LifecycleEvent | EventsLost:
        while True:
            if self._lost:
                lost, self._lost = self._lost, 0
                return EventsLost(lost)
            if self._queue:
                await trio.lowlevel.checkpoint()
                return self._queue.popleft()
            if self._closed:
                raise StopAsyncIteration
            self._wakeup = trio.Event()
            await self._wakeup.wait()


class EventBus:
    """Publishes each event to every current subscriber without ever blocking.

    ``on_lost(count)`` hears of every event discarded from a full subscriber's buffer, at the
    moment of discarding (``count`` per publish, summed over subscribers).
    """

    def __init__(self, on_lost: Callable[[int], None] | None = None) -> None:
        self._subscribers: set[Subscription] = set()
        self._closed = False
        self._on_lost = on_lost

    def publish(self, event: LifecycleEvent) -> None:
        lost = 0
        for subscriber in self._subscribers:
            lost += subscriber._push(event)
        if lost and self._on_lost is not None:
            self._on_lost(lost)

    def open(self, buffer: int) -> Subscription:
        subscription = Subscription(buffer)
        if self._closed:
            subscription._close()
        else:
            self._subscribers.add(subscription)
        return subscription

    def discard(self, subscription: Subscription) -> None:
        self._subscribers.discard(subscription)
        subscription._close()

    def close(self) -> None:
        self._closed = True
        for subscription in self._subscribers:
            subscription._close()
        self._subscribers.clear()

    def __len__(self) -> int:
        return len(self._subscribers)
