"""The portal between an asyncio host and the Trio run that supervises, in both directions.

``await portal.run(fn)`` runs the Trio coroutine ``fn()`` as a task of the Trio run and waits
for it from asyncio; ``await portal.to_host(fn, ...)`` runs an asyncio coroutine on the host
loop and waits for it from Trio (progress callbacks). Only two thread-safe primitives cross the
border, the Trio token's ``run_sync_soon`` and the loop's ``call_soon_threadsafe``, so the same
portal serves a Trio run in its own thread and a guest run on the host loop.

Cancellation is structured both ways: a cancelled asyncio caller cancels its Trio task and
returns only once that task has finished (so ``notifications/cancelled`` went out), even when
it is cancelled again meanwhile, within ``cancel_wait`` seconds.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import Future as ThreadFuture
from contextlib import AbstractAsyncContextManager, asynccontextmanager, suppress
from typing import Any, TypeVar

import outcome
import trio

T = TypeVar("T")


class PortalClosedError(Exception):
    """The Trio run is shutting down or over: it takes no more calls."""


def _resolve(future: asyncio.Future[T], value: T) -> None:
    if not future.done():
        future.set_result(value)


def deliver(loop: asyncio.AbstractEventLoop, future: asyncio.Future[T], value: T) -> None:
    """Resolve an asyncio future from any thread; a closed host loop has nobody waiting."""
    with suppress(RuntimeError):
        loop.call_soon_threadsafe(_resolve, future, value)


async def settle(awaitable: asyncio.Future[Any], bound: float | None) -> int:
    """Wait until ``awaitable`` is done, at most ``bound`` seconds, ignoring cancellation.

    Returns how many cancellations arrived meanwhile; the caller re-raises one. The wait is
    what keeps a request, task or thread from outliving its caller.
    """
    loop = asyncio.get_running_loop()
    deadline = None if bound is None else loop.time() + bound
    swallowed = 0
    while not awaitable.done():
        remaining = None if deadline is None else deadline - loop.time()
        if remaining is not None and remaining <= 0:
            break
        try:
            await asyncio.wait([awaitable], timeout=remaining)
        except asyncio.CancelledError:
            swallowed += 1
    if awaitable.done() and not awaitable.cancelled():
        awaitable.exception()  # retrieved: the caller is raising its own cancellation instead
    return swallowed


class _Call:
    """One asyncio caller's Trio task: its function, the caller's context, how it ended."""

    __slots__ = (
        "cancel_requested",
        "context",
        "finished",
        "fn",
        "future",
        "loop",
        "outcome",
        "resolved",
        "scope",
    )

    def __init__(
        self,
        fn: Callable[[], Awaitable[Any]],
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        self.fn = fn
        self.loop = loop
        self.context = contextvars.copy_context()
        self.future: asyncio.Future[outcome.Outcome[Any]] = loop.create_future()
        self.finished: asyncio.Future[None] | None = None
        self.outcome: outcome.Outcome[Any] | None = None
        self.scope: trio.CancelScope | None = None
        self.cancel_requested = False
        self.resolved = False

    def resolve(self, result: outcome.Outcome[Any]) -> None:
        """In the Trio run: hand the outcome to the host loop, once."""
        if not self.resolved:
            self.resolved = True
            with suppress(RuntimeError):  # a closed host loop has nobody waiting
                self.loop.call_soon_threadsafe(self._arrive, result)

    def _arrive(self, result: outcome.Outcome[Any]) -> None:
        self.outcome = result
        if not self.future.done():
            self.future.set_result(result)
        if self.finished is not None and not self.finished.done():
            self.finished.set_result(None)

    async def wait_finished(self, bound: float) -> None:
        """After the caller was cancelled: wait (bounded) until the Trio task has ended."""
        if self.outcome is None:
            self.finished = self.loop.create_future()
            await settle(self.finished, bound)

    def cancel(self) -> None:
        """Runs in the Trio run: cancel the task, or make it start cancelled."""
        self.cancel_requested = True
        if self.scope is not None:
            self.scope.cancel()


class TrioPortal:
    """Runs Trio coroutines for asyncio callers, in a nursery the Trio side owns.

    The Trio side calls :meth:`open` with its nursery and :meth:`close` before it tears down;
    everything else is called from asyncio, except :meth:`to_host`.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, *, cancel_wait: float) -> None:
        self._loop = loop
        self._cancel_wait = cancel_wait
        self._token: trio.lowlevel.TrioToken | None = None
        self._nursery: trio.Nursery | None = None
        self._closed = False
        self.pending = 0
        """Calls the asyncio side is waiting for (or waiting to see finish)."""

    # ---- the Trio side ------------------------------------------------------------------

    def open(self, nursery: trio.Nursery) -> None:
        """Accept calls into ``nursery`` from now on (call from the Trio run)."""
        self._token = trio.lowlevel.current_trio_token()
        self._nursery = nursery

    def close(self) -> None:
        """Refuse new calls (call from the Trio run, before it cancels the nursery)."""
        self._closed = True

    def _spawn(self, call: _Call) -> None:
        if self._closed or self._nursery is None:
            call.resolve(outcome.Error(PortalClosedError()))
            return
        try:
            # The task inherits a copy of the asyncio caller's context variables, so an
            # OpenTelemetry span or structlog binding of the caller follows the request.
            call.context.run(self._nursery.start_soon, self._serve, call)
        except RuntimeError:  # the nursery closed meanwhile
            call.resolve(outcome.Error(PortalClosedError()))

    async def _serve(self, call: _Call) -> None:
        result: outcome.Outcome[Any] | None = None
        try:
            with trio.CancelScope() as scope:
                call.scope = scope
                if call.cancel_requested:
                    scope.cancel()
                try:
                    result = outcome.Value(await call.fn())
                except Exception as error:
                    result = outcome.Error(error)
        finally:
            # No result: cancelled by its caller (who raises CancelledError, not this) or by
            # the run's teardown.
            call.resolve(result if result is not None else outcome.Error(PortalClosedError()))

    async def to_host(self, fn: Callable[..., Awaitable[T]], *args: Any) -> T:
        """From the Trio run: run ``fn(*args)`` on the host loop and wait for it.

        Cancelling the Trio caller cancels the asyncio task and waits (bounded) for it.
        """
        token = trio.lowlevel.current_trio_token()
        done = trio.Event()

        async def host_side() -> T:
            return await fn(*args)

        future: ThreadFuture[T] = asyncio.run_coroutine_threadsafe(host_side(), self._loop)

        def wake(_: object) -> None:
            with suppress(trio.RunFinishedError):
                token.run_sync_soon(done.set)

        future.add_done_callback(wake)
        try:
            await done.wait()
        except trio.Cancelled:
            future.cancel()
            with trio.CancelScope(shield=True), trio.move_on_after(self._cancel_wait):
                await done.wait()
            raise
        return future.result()

    def to_host_soon(self, fn: Callable[..., object], *args: Any) -> None:
        """From the Trio run: call ``fn(*args)`` on the host loop soon, without waiting.

        Dropped once the host loop has closed; if it raises, the loop's exception handler
        reports it."""
        with suppress(RuntimeError):
            self._loop.call_soon_threadsafe(fn, *args)

    # ---- the asyncio side ---------------------------------------------------------------

    def _send(self, fn: Callable[[], object]) -> None:
        if self._token is None:
            raise PortalClosedError()
        try:
            self._token.run_sync_soon(fn)
        except trio.RunFinishedError:
            raise PortalClosedError() from None

    async def run(self, fn: Callable[[], Awaitable[T]]) -> T:
        """Run ``fn()`` in the Trio run and return its result or raise its error.

        Raises :class:`PortalClosedError` if the Trio run takes no more calls, or stopped
        this one as it tore down.
        """
        if self._closed:
            raise PortalClosedError()
        call = _Call(fn, self._loop)
        self._send(lambda: self._spawn(call))
        self.pending += 1
        try:
            try:
                result = await call.future
            except asyncio.CancelledError:
                if call.outcome is None:
                    with suppress(PortalClosedError):
                        self._send(call.cancel)
                    await call.wait_finished(self._cancel_wait)
                raise
        finally:
            self.pending -= 1
        value: T = result.unwrap()
        return value

    def hold(
        self, enter: Callable[[], AbstractAsyncContextManager[T]]
    ) -> AbstractAsyncContextManager[T]:
        """An asyncio context manager that holds the Trio context manager ``enter()`` open.

        A Trio task enters it, hands its value over and keeps it open until the asyncio
        block exits, then exits it in the same task, as Trio requires.
        """
        return self._held(enter)

    @asynccontextmanager
    async def _held(self, enter: Callable[[], AbstractAsyncContextManager[T]]) -> AsyncIterator[T]:
        loop = self._loop
        entered: asyncio.Future[tuple[T, trio.Event]] = loop.create_future()

        async def keep() -> None:
            release = trio.Event()
            async with enter() as value:
                deliver(loop, entered, (value, release))
                await release.wait()

        task = asyncio.ensure_future(self.run(keep))
        try:
            first: list[asyncio.Future[Any]] = [entered, task]
            await asyncio.wait(first, return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:
            task.cancel()
            await settle(task, None)
            raise
        if not entered.done():
            task.result()  # raises what entering raised
            raise PortalClosedError()
        value, release = entered.result()
        try:
            yield value
        finally:
            with suppress(PortalClosedError):
                self._send(release.set)
            swallowed = await settle(task, None)
            if swallowed:
                raise asyncio.CancelledError()
