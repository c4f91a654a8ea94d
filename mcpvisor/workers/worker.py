"""One Trio task owns one server's session and serves operations from a memory channel.

A session must be entered and exited by the same task (mcp-sdk-notes §1), so
:func:`run_worker` is that task: it opens the session, reports readiness through
``nursery.start``, serves :class:`~mcpvisor.workers.requests.Envelope` s until the server goes
away or its owner closes the channel, tears the session down, and returns a
:class:`~mcpvisor.workers.reports.WorkerExit` saying how it ended. Restarting is the owner's
business.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from contextlib import AsyncExitStack

import trio
from mcp import Client
from mcp.client.session import IncomingMessage
from mcp.shared.exceptions import MCPError
from mcp.shared.subscriptions import ServerEvent
from mcp_types import CONNECTION_CLOSED
from mcp_types.version import MODERN_PROTOCOL_VERSIONS

from mcpvisor.specs import InProcessSpec, ServerSpec
from mcpvisor.specs._logging import server_logger
from mcpvisor.specs.secrets import Redactor
from mcpvisor.workers.callbacks import ServerSide
from mcpvisor.workers.catalog import EMPTY_CATALOG
from mcpvisor.workers.errors import StartError
from mcpvisor.workers.link import Link
from mcpvisor.workers.listing import first_catalog
from mcpvisor.workers.opening import Opening, describe, open_client, start_error
from mcpvisor.workers.refresh import CatalogKeeper, listenable, served_bus
from mcpvisor.workers.reports import Ready, WorkerExit, WorkerHooks
from mcpvisor.workers.requests import Envelope, Inbox
from mcpvisor.workers.serving import Serving, link_verdict


async def run_worker(
    spec: ServerSpec,
    requests: Inbox[Envelope],
    hooks: WorkerHooks | None = None,
    *,
    label: str | None = None,
    server_side: ServerSide | None = None,
    task_status: trio.TaskStatus[Ready] = trio.TASK_STATUS_IGNORED,
) -> WorkerExit:
    """Own one session to the server ``spec`` describes, serving ``requests`` until it ends.

    Start with ``ready = await nursery.start(run_worker, spec, receive_channel)``. Connecting
    plus the handshake and the first listings may take ``timeouts.connect +
    timeouts.initialize`` seconds; a failure raises :class:`StartError` from ``nursery.start``
    with nothing left running. ``spec.protocol`` picks how the protocol era is negotiated.

    Once ready, envelopes are served by long-lived serving tasks, at most
    ``spec.max_concurrency`` at once (further envelopes wait in the channel). Each is served
    with its caller's context variables, inside its ``scope``, until ``envelope.deadline``
    when the caller set one, else until ``timeouts.request`` after it was dequeued. Its reply
    gets the SDK result, the server's JSON-RPC error as the SDK's ``MCPError`` (its message
    redacted), a :class:`RequestTimeoutError`, or a :class:`RequestInterruptedError` when the
    session ends first. An envelope whose scope is already cancelled when it is dequeued is
    not sent.

    Returns a :class:`WorkerExit` after teardown:

    - the server went away (process exit, closed connection, expired HTTP session,
      ``timeouts.probe_misses`` consecutive failed probes): ``normal`` or ``abnormal``, and
      ``hooks.on_lost`` was called with the same verdict before teardown began;
    - the owner closed the send side of ``requests``: ``stopped``.

    Either way every request in flight, and every envelope still queued, fails with
    :class:`RequestInterruptedError`; an answer the server had already written is delivered
    first. Envelopes that arrive during teardown fail when it ends. ``requests`` is left
    open (the owner owns it). A failed start leaves its queue untouched, for the owner to
    retry with. Teardown is bounded by ``timeouts.shutdown``; a stdio server's whole process
    tree is killed and the child reaped. If the worker is cancelled instead, it tears down the
    same way and lets the cancellation propagate.

    ``label`` names the server in logs and errors (default ``spec.name``).
    """
    worker = _Worker(spec, requests, hooks or WorkerHooks(), label or spec.name, server_side)
    return await worker.run(task_status)


def _leaves(exc: BaseException) -> list[BaseException]:
    if isinstance(exc, BaseExceptionGroup):
        return [leaf for inner in exc.exceptions for leaf in _leaves(inner)]
    return [exc]


def cancellation_only(exc: BaseException) -> tuple[BaseException, list[Exception]]:
    """``exc`` without its errors, and the errors: for a worker cancelled as it failed.

    A session torn down by a cancellation may fail at the same time (its pending requests
    get the SDK's "Connection closed"). Those errors belong to the teardown its owner asked
    for; raised with the cancellation, they would outlive it and end the supervisor itself.
    """
    if not isinstance(exc, BaseExceptionGroup):
        return exc, []
    errors, rest = exc.split(Exception)
    if rest is None or errors is None:
        return exc, []
    return rest, [leaf for leaf in _leaves(errors) if isinstance(leaf, Exception)]


def _closed(error: Exception) -> bool:
    return isinstance(error, MCPError) and error.code == CONNECTION_CLOSED


class _Worker:
    """Starts a session, hands it to :class:`Serving`, and turns its end into a verdict."""

    __slots__ = (
        "exit",
        "hooks",
        "keeper",
        "log",
        "name",
        "opening",
        "redact",
        "requests",
        "s2c",
        "serving",
        "spec",
        "unsubscribe",
    )

    def __init__(
        self,
        spec: ServerSpec,
        requests: Inbox[Envelope],
        hooks: WorkerHooks,
        name: str,
        server_side: ServerSide | None,
    ) -> None:
        self.spec = spec
        self.requests = requests
        self.hooks = hooks
        self.name = name
        self.redact = Redactor(spec)
        self.log = server_logger(name)
        side = server_side or ServerSide(name)
        self.s2c = side.session(name, redact=self.redact, log=self.log)
        self.opening = Opening()
        self.exit: WorkerExit | None = None
        self.keeper = CatalogKeeper(EMPTY_CATALOG, None, time_limit=0, log=self.log, redact=str)
        """Until the first catalog, one that only collects the list changes announced meanwhile."""
        self.serving: Serving | None = None
        self.unsubscribe: Callable[[], None] | None = None
        """Ends the subscription to an in-process server's bus (see :meth:`_follow`)."""

    async def run(self, task_status: trio.TaskStatus[Ready]) -> WorkerExit:
        t = self.spec.timeouts
        start_bound = t.connect + t.initialize
        started = False
        self.log.debug("server.starting", transport=type(self.spec).__name__)
        # One scope bounds the start, then (after serving) the teardown; a scope of its own
        # around either would exit out of order with the session's nurseries.
        life = trio.CancelScope(deadline=trio.current_time() + start_bound)
        try:
            with life:
                async with AsyncExitStack() as stack:
                    client = await open_client(
                        self.spec,
                        stack,
                        self.opening,
                        name=self.name,
                        redact=self.redact,
                        message_handler=self._on_message,
                        callbacks=self.s2c.client_kwargs(),
                    )
                    self.opening.link.on_lost = self._on_link_lost
                    self._follow(client)
                    ready, keeper = await self._ready(client)
                    await self.s2c.prepare(client, t.request)
                    if self.opening.link.lost:
                        raise self._start_error([])
                    life.deadline = math.inf
                    if life.cancel_called:
                        # The start bound passed as the start finished: the cancellation
                        # is already on its way, so this start failed.
                        raise self._timed_out(start_bound)
                    serving = self.serving = self._serving()
                    started = True
                    task_status.started(ready)
                    self.log.info(
                        "server.started",
                        protocol_version=ready.protocol_version,
                        pid=ready.pid,
                        tools=len(ready.catalog.tools),
                    )
                    self.exit = await serving.serve(client, ready, keeper, self.s2c)
                    life.deadline = trio.current_time() + t.shutdown
            if not started:
                raise self._timed_out(start_bound)
        except StartError as error:
            self.log.info("server.start_failed", kind=error.kind, cause=error.cause)
            raise
        except BaseException as exc:
            leaves = _leaves(exc)
            if not all(isinstance(leaf, Exception) for leaf in leaves):
                rest, errors = cancellation_only(exc)
                unexpected = [e for e in errors if not _closed(e)]
                if unexpected:
                    self.log.warning(
                        "server.failed_while_cancelled", error=describe(unexpected, self.redact)
                    )
                if rest is exc:
                    raise
                raise rest from None
            if not started:
                # The SDK may turn the deadline's cancellation into an error of its own.
                expired = life.cancel_called
                failure = self._timed_out(start_bound) if expired else self._start_error(leaves)
                self.log.info("server.start_failed", kind=failure.kind, cause=failure.cause)
                raise failure from None
            if self.serving is not None and self.serving.exit is None:
                self.serving.conclude(self._exit_from(leaves))
        finally:
            self.s2c.stop()
            self._unsubscribe()
            if self.serving is not None:
                self.exit = self.serving.exit
                self.serving.finish_pending(
                    "the worker was cancelled" if self.exit is None else self.exit.cause
                )
        assert self.exit is not None
        log = self.log.info if self.exit.kind != "abnormal" else self.log.warning
        log(
            "server.exited",
            kind=self.exit.kind,
            cause=self.exit.cause,
            returncode=self.exit.returncode,
        )
        return self.exit

    async def _ready(self, client: Client) -> tuple[Ready, CatalogKeeper]:
        try:
            catalog = await first_catalog(
                client, time_limit=self.spec.timeouts.request, log=self.log, redact=self.redact
            )
        except MCPError as error:
            if error.code == CONNECTION_CLOSED:
                raise
            raise StartError(
                self.name,
                "protocol",
                f"tools/list failed: {self.redact(error.error.message)[:500]}",
            ) from None
        early = self.keeper
        keeper = self.keeper = CatalogKeeper(
            catalog,
            self.hooks.on_catalog,
            time_limit=self.spec.timeouts.request,
            log=self.log,
            redact=self.redact,
        )
        keeper.followed = early.followed
        # Announced while the first listings were in flight: they may predate the change.
        if early.marked:
            keeper.mark(*early.marked)
        return Ready(catalog=catalog, pid=self.opening.link.pid), keeper

    def _follow(self, client: Client) -> None:
        """A 2026-era in-process session hears of list changes from its server's own bus
        (see :mod:`~mcpvisor.workers.refresh`), from before its first listing on, so no
        change can fall between the listing and the subscription."""
        if not isinstance(self.spec, InProcessSpec):
            return
        if client.protocol_version not in MODERN_PROTOCOL_VERSIONS:
            return
        kinds = listenable(client.server_capabilities)
        bus = served_bus(self.spec.server) if kinds else None
        if bus is None:
            return
        self.unsubscribe = bus.subscribe(self._on_event)
        self.keeper.followed = kinds

    def _unsubscribe(self) -> None:
        unsubscribe, self.unsubscribe = self.unsubscribe, None
        if unsubscribe is None:
            return
        try:
            unsubscribe()
        except Exception:  # a bus of the host's own: its failure is not the session's
            self.log.exception("server.unsubscribe_failed")

    def _on_event(self, event: ServerEvent) -> None:
        self.keeper.on_event(event)

    def _serving(self) -> Serving:
        return Serving(
            self.spec,
            self.requests,
            self.hooks,
            name=self.name,
            redact=self.redact,
            log=self.log,
            link=self.opening.link,
            http=self.opening.http,
        )

    def _on_link_lost(self, link: Link) -> None:
        # Before serving starts, the start itself fails and reports the link's cause.
        if self.serving is not None:
            self.serving.on_link_lost(link)

    def _timed_out(self, bound: float) -> StartError:
        return StartError(
            self.name, "timeout", f"connect and initialize did not finish within {bound:g}s"
        )

    def _start_error(self, leaves: list[BaseException]) -> StartError:
        return start_error(self.spec, self.opening, leaves, name=self.name, redact=self.redact)

    def _exit_from(self, leaves: list[BaseException]) -> WorkerExit:
        if self.opening.link.lost:
            return link_verdict(self.opening.link, self.redact)
        return WorkerExit("abnormal", f"the session failed: {describe(leaves, self.redact)}")

    async def _on_message(self, message: IncomingMessage) -> None:
        self.s2c.on_message(message)
        if self.keeper.notice(message):
            pass
        elif isinstance(message, Exception):
            self.log.debug("server.transport_error", error=describe([message], self.redact))
        await trio.lowlevel.checkpoint()
