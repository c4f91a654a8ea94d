"""Fan-out of lifecycle events to subscribers that may be slow.

Supervision must never wait for a subscriber, so each one has a bounded buffer: when it
falls behind, its oldest events are discarded and the next thing it reads is an
:class:`EventsLost` marker saying how many.

The buffers are views of one shared log rather than a queue per subscriber: publishing
appends once, wakes only the subscribers waiting for it, and counts the full ones, so its
cost does not grow with the subscribers that have stopped reading. What a subscriber lost is
worked out when it next reads, and comes to what a queue of its own would have discarded.
"""

from __future__ import annotations

from collections import deque
from collections.abc import AsyncIterator, Callable
from itertools import islice
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

    It holds at most its ``buffer`` most recent unread events. Iteration ends once the
    subscription or the supervisor is closed and what it held has been read.
    """

    __slots__ = ("_buffer", "_bus", "_cursor", "_due_at", "_lost", "_rest", "_wakeup")

    def __init__(self, bus: EventBus | None, buffer: int) -> None:
        self._buffer = check_buffer(buffer)
        self._bus = bus
        self._cursor = bus._head if bus is not None else 0
        """The log position of the next event to read."""
        self._due_at: int | None = None
        """Where the bus will next look at whether the buffer is full; None while it is."""
        self._lost = 0
        self._rest: deque[LifecycleEvent] | None = None if bus is not None else deque()
        """Set at closing: the unread events, now this subscription's own."""
        self._wakeup: trio.Event | None = None

    def _catch_up(self, bus: EventBus) -> int:
        """Move past what the buffer could not hold; the number of events unread after that."""
        unread = bus._head - self._cursor
        if unread > self._buffer:
            self._lost += unread - self._buffer
            self._cursor = bus._head - self._buffer
            unread = self._buffer
        return unread

    def _take(self) -> LifecycleEvent | EventsLost | None:
        """The next item without waiting, or None if there is none yet."""
        bus = self._bus
        unread = self._catch_up(bus) if bus is not None else 0
        if self._lost:
            lost, self._lost = self._lost, 0
            return EventsLost(lost)
        if bus is None:
            assert self._rest is not None
            return self._rest.popleft() if self._rest else None
        if not unread:
            return None
        event = bus._log[self._cursor - bus._head]
        self._cursor += 1
        if self._due_at is None:
            bus._track(self)
        return event

    def _close(self) -> None:
        bus = self._bus
        if bus is None:
            return
        unread = self._catch_up(bus)
        self._rest = deque(islice(bus._log, len(bus._log) - unread, None))
        self._bus = None
        if self._wakeup is not None:
            self._wakeup.set()

    @property
    def pending(self) -> int:
        """Events buffered and not yet read."""
        if self._bus is not None:
            return min(self._bus._head - self._cursor, self._buffer)
        assert self._rest is not None
        return len(self._rest)

    def __aiter__(self) -> Subscription:
        return self

    def _ready(self) -> bool:
        """Whether :meth:`_take` has something to give."""
        if self._lost:
            return True
        if self._bus is not None:
            return self._bus._head > self._cursor
        return bool(self._rest)

    async def __anext__(self) -> LifecycleEvent | EventsLost:
        while True:
            if self._ready():
                # Checkpoint first: a reader cancelled here has taken nothing.
                await trio.lowlevel.checkpoint()
                item = self._take()
                if item is not None:
                    return item
                continue
            bus = self._bus
            if bus is None:
                raise StopAsyncIteration
            self._wakeup = trio.Event()
            bus._waiting.add(self)
            try:
                await self._wakeup.wait()
            finally:
                self._wakeup = None
                if self._bus is not None:
                    self._bus._waiting.discard(self)


class EventBus:
    """Publishes each event to every current subscriber without ever blocking.

    ``on_lost(count)`` hears of every event discarded from a full subscriber's buffer, at the
    moment of discarding (``count`` per publish, summed over subscribers).
    """

    def __init__(self, on_lost: Callable[[int], None] | None = None) -> None:
        self._subscribers: set[Subscription] = set()
        self._closed = False
        self._on_lost = on_lost
        self._log: deque[LifecycleEvent] = deque(maxlen=1)
        """The most recent events, as many as the largest buffer holds."""
        self._head = 0
        """The log position the next event takes."""
        self._waiting: set[Subscription] = set()
        self._full: set[Subscription] = set()
        """Subscribers whose buffers are full: each publish discards one event of theirs."""
        self._due: dict[int, set[Subscription]] = {}
        """By log position: subscribers whose buffers are full once the log reaches it, unless
        they have read since. Readers do not move their entry (a read costs no bookkeeping); a
        publish that finds an entry stale moves it to where that buffer now fills."""

    def publish(self, event: LifecycleEvent) -> None:
        due = self._due.pop(self._head, None)
        if due is not None:
            for subscriber in due:
                subscriber._due_at = None
                if subscriber._cursor + subscriber._buffer == self._head:
                    self._full.add(subscriber)
                else:
                    self._track(subscriber)
        self._log.append(event)
        self._head += 1
        if self._waiting:
            waiting, self._waiting = self._waiting, set()
            for subscriber in waiting:
                if subscriber._wakeup is not None:
                    subscriber._wakeup.set()
        if self._full and self._on_lost is not None:
            self._on_lost(len(self._full))

    def open(self, buffer: int) -> Subscription:
        if self._closed:
            return Subscription(None, buffer)
        subscription = Subscription(self, buffer)
        self._subscribers.add(subscription)
        if buffer > (self._log.maxlen or 0):
            self._log = deque(self._log, maxlen=buffer)
        self._track(subscription)
        return subscription

    def _track(self, subscription: Subscription) -> None:
        """``subscription``'s buffer is not full (it opened, or has just read): watch for it
        filling when the log reaches its cursor plus its buffer."""
        self._full.discard(subscription)
        key = subscription._cursor + subscription._buffer
        subscription._due_at = key
        self._due.setdefault(key, set()).add(subscription)

    def _untrack(self, subscription: Subscription) -> None:
        key = subscription._due_at
        if key is None:
            return
        subscription._due_at = None
        bucket = self._due.get(key)
        if bucket is not None:
            bucket.discard(subscription)
            if not bucket:
                del self._due[key]

    def discard(self, subscription: Subscription) -> None:
        ours = subscription._bus is self
        subscription._close()
        if not ours:
            return
        self._subscribers.discard(subscription)
        self._full.discard(subscription)
        self._waiting.discard(subscription)
        self._untrack(subscription)
        largest = max((s._buffer for s in self._subscribers), default=1)
        if largest < (self._log.maxlen or 0):
            self._log = deque(self._log, maxlen=largest)

    def close(self) -> None:
        self._closed = True
        for subscription in self._subscribers:
            subscription._close()
        self._subscribers.clear()
        self._full.clear()
        self._waiting.clear()
        self._due.clear()
        self._log.clear()

    def __len__(self) -> int:
        return len(self._subscribers)
