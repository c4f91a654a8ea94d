"""Fan-out of lifecycle events to subscribers that may be slow.

Supervision must never wait for a subscriber, so each one gets a bounded buffer: when it
falls behind, its oldest events are discarded and the next thing it reads is an
:class:`EventsLost` marker saying how many.
"""

from __future__ import annotations

from collections import deque
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import attrs
import trio

if TYPE_CHECKING:
    from mcpvisor.supervisor.lifecycle import LifecycleEvent


@attrs.frozen
class EventsLost:
    """A subscriber fell behind and ``count`` events were discarded before this point."""

    count: int


class Subscription(AsyncIterator["LifecycleEvent | EventsLost"]):
    """One subscriber's view of the event stream; iterate it with ``async for``.

    Iteration ends when the subscription or the supervisor is closed.
    """

    def __init__(self, buffer: int) -> None:
        if buffer < 1:
            raise ValueError("buffer must be >= 1")
        self._buffer = buffer
        self._queue: deque[LifecycleEvent] = deque()
        self._lost = 0
        self._closed = False
        self._wakeup = trio.Event()

    def _push(self, event: LifecycleEvent) -> None:
        if self._closed:
            return
        if len(self._queue) >= self._buffer:
            self._queue.popleft()
            self._lost += 1
        self._queue.append(event)
        self._wakeup.set()

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
    """Publishes each event to every current subscriber without ever blocking."""

    def __init__(self) -> None:
        self._subscribers: set[Subscription] = set()
        self._closed = False

    def publish(self, event: LifecycleEvent) -> None:
        for subscriber in self._subscribers:
            subscriber._push(event)

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
