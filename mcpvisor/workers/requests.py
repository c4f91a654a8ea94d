"""What travels from a caller to a worker: an operation, a one-shot reply, and the envelope."""

from __future__ import annotations

import contextvars
import math

import attrs
import trio

from mcpvisor.workers.operations import Operation


class Reply:
    """A one-shot slot for a request's outcome: created by the caller, filled by the worker.

    The first ``set_result`` or ``set_error`` wins and later ones are ignored, so the worker
    can fail every pending reply on a crash without racing the request that was just answering.
    """

    __slots__ = ("_done", "_error", "_value")

    def __init__(self) -> None:
        self._done = trio.Event()
        self._value: object = None
        self._error: BaseException | None = None

    def set_result(self, value: object) -> None:
        """Complete with ``value``, unless already done."""
        if not self._done.is_set():
            self._value = value
            self._done.set()

    def set_error(self, error: BaseException) -> None:
        """Complete with ``error`` (raised by :meth:`wait`), unless already done."""
        if not self._done.is_set():
            self._error = error
            self._done.set()

    @property
    def done(self) -> bool:
        """Whether a result or an error has been set."""
        return self._done.is_set()

    @property
    def error(self) -> BaseException | None:
        """The error, if completed with one; None while pending or after a result."""
        return self._error

    async def wait(self) -> object:
        """Wait for completion, then return the result or raise the error."""
        await self._done.wait()
        if self._error is not None:
            raise self._error
        return self._value

    def __repr__(self) -> str:
        state = "pending" if not self.done else ("error" if self._error is not None else "result")
        return f"<Reply {state}>"


@attrs.define(eq=False)
class Envelope:
    """An operation on its way to a worker, with where to put the answer and how to call it off.

    ``scope`` is an unentered :class:`trio.CancelScope`; the worker performs the call inside
    it. A caller that gives up (its own cancel scope, a deadline) calls ``scope.cancel()``:
    the SDK call is cancelled and the server receives ``notifications/cancelled``. The worker
    bounds the call by ``deadline`` (trio's clock) when the caller set one, else by
    ``now + timeouts.request``, and fails the reply with :class:`RequestTimeoutError` when it
    passes.

    ``context`` is the caller's :func:`contextvars.copy_context`: the worker sets each of its
    variables in the serving task for the call and resets them after, so the SDK's
    OpenTelemetry span gets the caller's span as parent and structlog context variables tag
    the right lines.

    Envelopes compare by identity: two identical requests are still two requests.
    """

    operation: Operation
    reply: Reply = attrs.field(factory=Reply)
    scope: trio.CancelScope = attrs.field(factory=trio.CancelScope)
    deadline: float = math.inf
    context: contextvars.Context | None = None
