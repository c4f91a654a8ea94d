"""What travels from a caller to a worker: an operation, a one-shot reply, the envelope, and
the mailbox it waits in."""

from __future__ import annotations

import contextvars
import math
from collections import deque
from collections.abc import Callable
from typing import Generic, Protocol, TypeVar

import attrs
import trio

from mcpvisor.workers.operations import Operation

T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)


class Inbox(Protocol[T_co]):
    """What a worker takes envelopes from: a :class:`Mailbox` or a trio memory receive channel.

    Both raise ``trio.WouldBlock`` from ``receive_nowait`` when empty, and ``trio.EndOfChannel``
    once the sender closed and nothing is left.
    """

    def receive_nowait(self) -> T_co: ...

    async def receive(self) -> T_co: ...


class Mailbox(Generic[T]):
    """An unbounded first-in first-out queue from one owner to a worker's serving tasks.

    It keeps a trio memory channel's promises for what happens here: after :meth:`close`,
    ``send_nowait`` raises ``trio.ClosedResourceError`` and receivers take what is left, then
    get ``trio.EndOfChannel``. It has no capacity because each queued envelope has a caller
    waiting on it, so the callers bound the queue. Every idle worker holds one, and it costs
    about half of a channel pair's ~1.8 KiB, which adds two ordered dicts to the same deque (a
    deque, not a list, so that a hung server's queue of thousands of calls drains in linear
    time).

    A waiting task is woken, not handed the item: it takes the next item itself, and waits
    again if another task took it first. So nothing is lost to a cancellation, and the
    buffer holds what was sent until a serving task runs.
    """

    __slots__ = ("_closed", "_items", "_receivers")

    def __init__(self) -> None:
        self._items: deque[T] = deque()
        self._closed = False
        self._receivers: dict[trio.lowlevel.Task, None] = {}

    def send_nowait(self, item: T) -> None:
        """Queue ``item``, or raise ``trio.ClosedResourceError`` once closed."""
        if self._closed:
            raise trio.ClosedResourceError("the mailbox is closed")
        self._items.append(item)
        if self._receivers:
            _wake_one(self._receivers)

    def receive_nowait(self) -> T:
        """The oldest item, or ``trio.WouldBlock`` (empty) or ``trio.EndOfChannel`` (closed)."""
        if self._items:
            return self._items.popleft()
        if self._closed:
            raise trio.EndOfChannel
        raise trio.WouldBlock

    async def receive(self) -> T:
        """The oldest item, waiting for one while the mailbox is empty."""
        if self._items or self._closed:
            await trio.lowlevel.checkpoint_if_cancelled()
            item = self.receive_nowait()
            await trio.lowlevel.cancel_shielded_checkpoint()
            return item
        # Empty: parking is the checkpoint (a cancellation aborts it).
        while True:
            await trio.lowlevel.wait_task_rescheduled(_park(self._receivers))
            try:
                return self.receive_nowait()
            except trio.WouldBlock:
                continue

    def close(self) -> None:
        """Take no more items; wake every waiting receiver to see so."""
        self._closed = True
        while self._receivers:
            _wake_one(self._receivers)


def _wake_one(waiting: dict[trio.lowlevel.Task, None]) -> None:
    task = next(iter(waiting))
    del waiting[task]
    trio.lowlevel.reschedule(task)


def _park(waiting: dict[trio.lowlevel.Task, None]) -> Callable[[object], trio.lowlevel.Abort]:
    """Put the current task in ``waiting`` until :func:`_wake_one`; the abort function to wait
    with, so that a cancellation leaves no trace. (A function, not a coroutine: an idle
    worker's waiting serving task keeps no frame of it.)"""
    task = trio.lowlevel.current_task()
    waiting[task] = None

    def abort(_: object) -> trio.lowlevel.Abort:
        waiting.pop(task, None)
        return trio.lowlevel.Abort.SUCCEEDED

    return abort


class Reply:
    """A one-shot slot for a request's outcome: created by the caller, filled by the worker.

    The first ``set_result`` or ``set_error`` wins and later ones are ignored, so the worker
    can fail every pending reply on a crash without racing the request that was just answering.
    One task waits on it, the caller; the worker wakes that task directly, which costs a
    request less than a :class:`trio.Event` does.
    """

    __slots__ = ("_error", "_value", "_waiter", "done")

    def __init__(self) -> None:
        self.done = False
        """Whether a result or an error has been set (read-only)."""
        self._value: object = None
        self._error: BaseException | None = None
        self._waiter: trio.lowlevel.Task | None = None

    def set_result(self, value: object) -> None:
        """Complete with ``value``, unless already done."""
        if not self.done:
            self._value = value
            self._complete()

    def set_error(self, error: BaseException) -> None:
        """Complete with ``error`` (raised by :meth:`wait`), unless already done."""
        if not self.done:
            self._error = error
            self._complete()

    def _complete(self) -> None:
        self.done = True
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            trio.lowlevel.reschedule(waiter)

    @property
    def error(self) -> BaseException | None:
        """The error, if completed with one; None while pending or after a result."""
        return self._error

    async def wait(self) -> object:
        """Wait for completion, then return the result or raise the error.

        A checkpoint either way. Only one task may wait at a time: ``RuntimeError`` otherwise.
        """
        if self.done:
            await trio.lowlevel.checkpoint()
        else:
            if self._waiter is not None:
                raise RuntimeError("another task already waits for this reply")
            self._waiter = trio.lowlevel.current_task()
            await trio.lowlevel.wait_task_rescheduled(self._abort)
        if self._error is not None:
            raise self._error
        return self._value

    def _abort(self, _: object) -> trio.lowlevel.Abort:
        self._waiter = None
        return trio.lowlevel.Abort.SUCCEEDED

    def __repr__(self) -> str:
        state = "pending" if not self.done else ("error" if self._error is not None else "result")
        return f"<Reply {state}>"


@attrs.define(eq=False)
class Envelope:
    """An operation on its way to a worker, with where to put the answer and how to call it off.

    A caller that gives up (its own cancel scope, a deadline) calls :meth:`cancel`: a queued
    envelope is then never sent, and a call in flight is cancelled, so the server receives
    ``notifications/cancelled``.

    ``deadline`` (trio's clock) is when the call's time is up, and whoever sets one keeps it:
    at that moment it fails the reply with :class:`~mcpvisor.RequestTimeoutError` and calls
    :meth:`cancel`. The supervisor's deadline watch does so for every request, so that no
    request costs a cancel scope of its own. An envelope without one is bounded by the worker
    itself, by ``timeouts.request``.

    ``context`` is the caller's :func:`contextvars.copy_context`: the worker sets each of its
    variables in the serving task for the call and resets them after, so the SDK's
    OpenTelemetry span gets the caller's span as parent and structlog context variables tag
    the right lines.

    Envelopes compare by identity: two identical requests are still two requests.
    """

    operation: Operation
    reply: Reply = attrs.field(factory=Reply)
    deadline: float = math.inf
    context: contextvars.Context | None = None
    cancelled: bool = attrs.field(default=False, init=False)
    """Whether :meth:`cancel` was called (read-only)."""
    serving: trio.CancelScope | None = attrs.field(default=None, init=False, repr=False)
    """The cancel scope the call runs in while a serving task performs it (the worker's)."""

    def cancel(self) -> None:
        """Call the request off: skip it if still queued, cancel the call if in flight."""
        self.cancelled = True
        if self.serving is not None:
            self.serving.cancel()
