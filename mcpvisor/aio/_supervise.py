"""``open_supervisor`` for asyncio: the Trio supervisor, its run, and the way out of it.

The Trio run owns everything: the supervisor, the tasks that serve asyncio callers (in a
nursery around it) and a watcher that refreshes the status snapshot on every event. Leaving
the asyncio block asks the run to stop and waits until it is completely over (every server
torn down within its shutdown bound, the thread joined), even when cancelled again.
"""

from __future__ import annotations

import asyncio
import os
import random
import time
from collections.abc import Iterable, Mapping
from contextlib import suppress
from types import TracebackType
from typing import Any

import outcome
import trio

from mcpvisor.aio._answering import supervisor_on_host
from mcpvisor.aio._handle import SupervisorClient, _Core
from mcpvisor.aio._portal import TrioPortal, deliver, settle
from mcpvisor.aio._runners import RUNNERS, Runner, TrioRun, make_run
from mcpvisor.specs import SupervisorSpec, UsageError
from mcpvisor.specs.config import load_config
from mcpvisor.supervisor import Hooks, LifecycleEvent
from mcpvisor.supervisor import open_supervisor as open_trio_supervisor

SpecSource = SupervisorSpec | str | os.PathLike[str] | Mapping[str, Any]


def open_supervisor(
    spec: SpecSource,
    *,
    runner: Runner = "thread",
    hooks: Hooks | Iterable[Hooks] | None = None,
    rng: random.Random | None = None,
    cancel_wait: float = 10.0,
) -> Supervision:
    """Supervise ``spec``'s servers from asyncio for the duration of an ``async with`` block.

    ``async with mcpvisor.aio.open_supervisor("mcp.json") as client:`` yields an asyncio
    :class:`~mcpvisor.aio.SupervisorClient`. ``spec`` is a :class:`~mcpvisor.SupervisorSpec`
    or anything :func:`~mcpvisor.load_config` reads. Entering returns once every required
    server is ACTIVE and every optional one finished its first start attempt, and raises
    :class:`~mcpvisor.RequiredServerError` if a required one cannot start. If a required
    server is dropped later, the block is cancelled and that error is raised out of it.

    ``runner="thread"`` (the default) runs the supervisor in its own Trio thread, so crashes
    are noticed and servers restarted even while the host loop is blocked;
    ``runner="guest"`` runs it as a Trio guest on the host loop (no thread, but supervision
    stalls whenever the loop does). ``cancel_wait`` bounds how long a cancelled caller waits
    for its request to be cancelled on the Trio side. ``hooks`` and ``rng`` are the Trio
    ``open_supervisor``'s: hooks run in the supervisor's Trio run (request hooks in the task
    serving the asyncio caller, with the caller's context variables), so they must not block.

    Open it once per process (in a web app's lifespan), never per request. Leaving the block,
    also through Ctrl-C or a second cancellation, stops every server and joins the thread.
    No signal handler is installed.
    """
    if runner not in RUNNERS:
        raise UsageError("runner", f"must be one of {', '.join(RUNNERS)}")
    if not cancel_wait > 0:
        raise UsageError("cancel_wait", "must be a positive number of seconds")
    if not isinstance(spec, SupervisorSpec):
        spec = load_config(spec)
    return Supervision(spec, runner=runner, hooks=hooks, rng=rng, cancel_wait=cancel_wait)


class Supervision:
    """The async context manager :func:`open_supervisor` returns; enter it once."""

    def __init__(
        self,
        spec: SupervisorSpec,
        *,
        runner: Runner,
        hooks: Hooks | Iterable[Hooks] | None,
        rng: random.Random | None,
        cancel_wait: float,
    ) -> None:
        self._spec = spec
        self._hooks = hooks
        self._runner: Runner = runner
        self._rng = rng
        self._cancel_wait = cancel_wait
        self._token: trio.lowlevel.TrioToken | None = None
        self._stop_requested = False
        self._started = False
        self._entered = False
        self._cancelled_host = False
        self._host: asyncio.Task[Any] | None = None
        self._run: TrioRun | None = None

    # ---- asyncio side -----------------------------------------------------------------

    async def __aenter__(self) -> SupervisorClient:
        if self._run is not None:
            raise RuntimeError("open_supervisor(...) can be entered only once")
        loop = asyncio.get_running_loop()
        self._loop = loop
        self._host = asyncio.current_task()
        self._portal = TrioPortal(loop, cancel_wait=self._cancel_wait)
        self._ready: asyncio.Future[SupervisorClient] = loop.create_future()
        run = self._run = make_run(self._runner, loop)
        run.finished.add_done_callback(self._on_finished)
        run.start(self._main)
        try:
            first: list[asyncio.Future[Any]] = [self._ready, run.finished]
            await asyncio.wait(first, return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:
            self._request_stop()
            await self._join()
            raise
        if self._ready.done():
            self._entered = True
            return self._ready.result()
        await self._join()
        run.finished.result().unwrap()
        raise RuntimeError("the supervisor stopped before it started")  # pragma: no cover

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        self._request_stop()
        swallowed = await self._join()
        assert self._run is not None
        result = self._run.finished.result()
        if self._cancelled_host and self._host is not None:
            self._host.uncancel()
        if isinstance(result, outcome.Error):
            error = result.error
            if exc is None or exc is error:
                raise error
            if self._cancelled_host and isinstance(exc, asyncio.CancelledError):
                raise error from None
            if isinstance(exc, asyncio.CancelledError):
                return False
            # A required server was dropped: that is why the host's calls began failing.
            raise error from exc
        if swallowed and exc is None:
            raise asyncio.CancelledError()
        return False

    async def aclose(self) -> None:
        """Stop the supervisor and wait until its run is over (leaving the block does it)."""
        self._request_stop()
        swallowed = await self._join()
        if swallowed:
            raise asyncio.CancelledError()

    def _request_stop(self) -> None:
        if self._stop_requested:
            return
        self._stop_requested = True
        token = self._token
        if token is not None:
            with suppress(trio.RunFinishedError):
                token.run_sync_soon(self._on_stop)

    async def _join(self) -> int:
        """Wait for the Trio run to be over; returns the cancellations swallowed meanwhile."""
        assert self._run is not None
        try:
            swallowed = await settle(self._run.finished, None)
        except BaseException:
            # Ctrl-C or SystemExit while waiting: the host is going down, and the servers
            # must be torn down first, so block until the run is over.
            self._run.join()
            raise
        self._run.join()
        return swallowed

    def _on_finished(self, finished: asyncio.Future[outcome.Outcome[Any]]) -> None:
        """The run ended; if nobody asked it to, a required server was dropped (escalation)."""
        if self._entered and not self._stop_requested and self._host is not None:
            self._cancelled_host = True
            self._host.cancel()

    # ---- Trio side ----------------------------------------------------------------------

    def _on_stop(self) -> None:
        self._stop.set()
        if not self._started:
            self._startup.cancel()

    async def _main(self) -> None:
        self._stop = trio.Event()
        self._startup = trio.CancelScope()
        self._token = trio.lowlevel.current_trio_token()
        offset = trio.current_time() - time.perf_counter()
        core: _Core | None = None
        try:
            async with trio.open_nursery() as calls:
                self._portal.open(calls)
                try:
                    with self._startup:
                        if self._stop_requested:
                            self._startup.cancel()
                        refresher = _Refresher()
                        async with open_trio_supervisor(
                            supervisor_on_host(self._spec, self._portal),
                            hooks=[*_listed(self._hooks), refresher],
                            rng=self._rng,
                        ) as client:
                            core = _Core(client, self._portal, offset)
                            refresher.core = core
                            await calls.start(_watch, core)
                            core.refresh()
                            self._started = True
                            deliver(self._loop, self._ready, SupervisorClient(core, self.aclose))
                            await self._stop.wait()
                finally:
                    self._portal.close()
                    calls.cancel_scope.cancel()
                    if core is not None:
                        core.refresh()
        except BaseExceptionGroup as group:
            raise _single(group) from None


def _listed(hooks: Hooks | Iterable[Hooks] | None) -> list[Hooks]:
    if hooks is None:
        return []
    return [hooks] if isinstance(hooks, Hooks) else list(hooks)


class _Refresher(Hooks):
    """Takes the snapshot as each event is published, before any subscriber can see it.

    An asyncio host that reads ``status()`` on an event then sees that event's state, never
    the one before it (a refresh from a subscriber of its own would race the host's).
    """

    def __init__(self) -> None:
        self.core: _Core | None = None

    def state_changed(self, event: LifecycleEvent) -> None:
        if self.core is not None:
            self.core.refresh()


async def _watch(core: _Core, *, task_status: trio.TaskStatus[None]) -> None:
    """Refresh the status snapshot after every burst of lifecycle events."""
    async with core.trio.subscribe(buffer=256) as events:
        task_status.started()
        async for _ in events:
            if events.pending == 0:
                core.refresh()


def _single(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """The one real error of a nursery's group, so asyncio hosts can ``except`` it plainly."""
    _, rest = group.split(trio.Cancelled)
    leaves: list[BaseException] = []

    def walk(exc: BaseException) -> None:
        if isinstance(exc, BaseExceptionGroup):
            for inner in exc.exceptions:
                walk(inner)
        else:
            leaves.append(exc)

    if rest is not None:
        walk(rest)
    return leaves[0] if len(leaves) == 1 else group
