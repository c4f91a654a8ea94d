"""Lifecycle events for asyncio subscribers, with the Trio subscription's semantics.

A Trio task reads the supervisor's own subscription and pushes each event here under a lock,
from its thread; the asyncio reader is woken only when it is waiting. So the buffer stays
bounded even while the host loop is blocked: past ``buffer`` unread events the oldest are
discarded and the next read is an :class:`~mcpvisor.EventsLost` marker. Supervision never
waits for a subscriber. Resource updates travel the same way, without the marker, as the Trio
feed drops its oldest updates silently.
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from collections.abc import AsyncIterator
from contextlib import suppress
from typing import TYPE_CHECKING

from mcpvisor.supervisor import EventsLost

if TYPE_CHECKING:
    from mcpvisor.supervisor import LifecycleEvent
    from mcpvisor.supervisor import Subscription as TrioSubscription
    from mcpvisor.workers.callbacks import ResourceUpdated


class Subscription(AsyncIterator["LifecycleEvent | EventsLost"]):
    """One asyncio subscriber's view of the event stream; iterate it with ``async for``.

    Yields :class:`~mcpvisor.LifecycleEvent` s and :class:`~mcpvisor.EventsLost` markers.
    Iteration ends when the subscription's block exits or the supervisor closes.
    """

    def __init__(
        self, buffer: int, loop: asyncio.AbstractEventLoop, *, markers: bool = True
    ) -> None:
        self._buffer = buffer
        self._markers = markers
        self._loop = loop
        self._lock = threading.Lock()
        self._queue: deque[LifecycleEvent] = deque()
        self._lost = 0
        self._closed = False
        self._waiter: asyncio.Future[None] | None = None

    @property
    def pending(self) -> int:
        """Events buffered and not yet read."""
        return len(self._queue)

    # ---- fed from the Trio run, any thread ------------------------------------------------

    def _wake_locked(self) -> None:
        waiter, self._waiter = self._waiter, None
        if waiter is not None:
            with suppress(RuntimeError):  # a closed host loop has nobody reading
                self._loop.call_soon_threadsafe(_wake, waiter)

    def _push(self, event: LifecycleEvent) -> None:
        with self._lock:
            if self._closed:
                return
            if len(self._queue) >= self._buffer:
                self._queue.popleft()
                if self._markers:
                    self._lost += 1
            self._queue.append(event)
            self._wake_locked()

    def _lose(self, count: int) -> None:
        with self._lock:
            self._lost += count
            self._wake_locked()

    def _close(self) -> None:
        with self._lock:
            self._closed = True
            self._wake_locked()

    # ---- read from asyncio --------------------------------------------------------------

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> LifecycleEvent | EventsLost:
        while True:
            with self._lock:
                if self._lost:
                    lost, self._lost = self._lost, 0
                    return EventsLost(lost)
                if self._queue:
                    return self._queue.popleft()
                if self._closed:
                    raise StopAsyncIteration
                waiter = self._waiter = self._loop.create_future()
            await waiter


class ResourceUpdates(AsyncIterator["ResourceUpdated"]):
    """An asyncio reader's view of :meth:`~mcpvisor.SupervisorClient.resource_updates`: the
    same bounded feed (the oldest updates are dropped, with no marker)."""

    def __init__(self, feed: Subscription) -> None:
        self._feed = feed

    @property
    def pending(self) -> int:
        """Updates buffered and not yet read."""
        return self._feed.pending

    def __aiter__(self) -> ResourceUpdates:
        return self

    async def __anext__(self) -> ResourceUpdated:
        update = await self._feed.__anext__()
        assert not isinstance(update, EventsLost)
        return update  # type: ignore[return-value]


async def pump_updates(updates: AsyncIterator[ResourceUpdated], into: Subscription) -> None:
    """In the Trio run: forward every update of ``updates`` to ``into`` until either closes."""
    try:
        async for update in updates:
            into._push(update)  # type: ignore[arg-type]
    finally:
        into._close()


def _wake(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


async def pump(events: TrioSubscription, into: Subscription) -> None:
    """In the Trio run: forward every event of ``events`` to ``into`` until either closes."""
    try:
        async for event in events:
            if isinstance(event, EventsLost):
                into._lose(event.count)
            else:
                into._push(event)
    finally:
        into._close()
