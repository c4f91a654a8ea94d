"""One Trio task owns one server's session and serves operations from a memory channel.

A session must be entered and exited by the same task (mcp-sdk-notes §1), so
:func:`run_worker` is that task: it opens the session, reports readiness through
``nursery.start``, serves :class:`~mcpvisor.workers.requests.Envelope` s until the server goes
away or its owner closes the channel, tears the session down, and returns a
:class:`~mcpvisor.workers.reports.WorkerExit` saying how it ended. Restarting is the owner's
business.
"""

from __future__ import annotations

import contextvars
import math
from collections.abc import Iterable, Sequence
from contextlib import AsyncExitStack
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import httpx2
import mcp_types as types
import trio
from mcp import Client
from mcp.client.session import IncomingMessage
from mcp.client.sse import sse_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError
from mcp_types import CONNECTION_CLOSED

from mcpvisor.specs import HttpSpec, InProcessSpec, ServerSpec, SseSpec, StdioSpec
from mcpvisor.specs._logging import library_logger
from mcpvisor.specs.secrets import Redactor
from mcpvisor.workers.callbacks import ServerSide
from mcpvisor.workers.catalog import EMPTY_CATALOG
from mcpvisor.workers.errors import (
    RequestInterruptedError,
    RequestTimeoutError,
    StartError,
    StartErrorKind,
)
from mcpvisor.workers.health import probe_loop
from mcpvisor.workers.link import Link, WatchedTransport
from mcpvisor.workers.listing import first_catalog
from mcpvisor.workers.refresh import CatalogKeeper
from mcpvisor.workers.remote import HttpStatusLog, http_client, is_session_gone
from mcpvisor.workers.reports import ExitKind, Ready, WorkerExit, WorkerHooks
from mcpvisor.workers.requests import Envelope
from mcpvisor.workers.stdio import StdioTransport

_log = library_logger()

_SSE_READ_TIMEOUT = 24 * 3600.0
"""SSE streams idle between events; liveness is the probes' job, not a read timeout's."""

_ANSWER_GRACE = 1.0
"""After a link is lost, how long in-flight calls may take to collect answers already read.

The SDK fails every call still waiting with "connection closed" within a scheduler pass of
the read stream ending, so this bound is only reached if the SDK breaks that promise.
"""

_STOPPED = "stopped by its owner"
_HTTP_STAND_IN = "Server returned an error response"
"""The SDK's message for an HTTP error status with no JSON-RPC body."""


def _client_info() -> types.Implementation:
    try:
        ours = version("mcpvisor")
    except PackageNotFoundError:  # pragma: no cover - running from a bare checkout
        ours = "0"
    return types.Implementation(name="mcpvisor", version=ours)


async def run_worker(
    spec: ServerSpec,
    requests: trio.MemoryReceiveChannel[Envelope],
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
      ``hooks.on_lost`` was called with the same verdict the moment it was known;
    - the owner closed the send side of ``requests``: ``stopped``.

    Either way every request in flight, and every envelope still queued, fails with
    :class:`RequestInterruptedError`; an answer the server had already written is delivered
    first. Envelopes that arrive during teardown fail when it ends. ``requests`` is left
    open (the owner owns it). A failed start leaves its queue untouched, for the owner to
    retry with. Teardown is bounded by ``timeouts.shutdown``; a stdio server's whole process
    tree is killed and the child reaped. If the worker is cancelled instead, it tears down the
    same way and lets the cancellation propagate.

    ``label`` names the server in logs and errors (default ``spec.name``). ``server_side``
    holds the host's handlers, roots and subscriptions for this server (none: answer nothing).
    """
    worker = _Worker(spec, requests, hooks or WorkerHooks(), label or spec.name)
    side = server_side or ServerSide(worker.name)
    worker.s2c = side.session(worker.name, redact=worker.redact)
    return await worker.run(task_status)


def _leaves(exc: BaseException) -> list[BaseException]:
    if isinstance(exc, BaseExceptionGroup):
        return [leaf for inner in exc.exceptions for leaf in _leaves(inner)]
    return [exc]


_BAD_SPAWN = (FileNotFoundError, PermissionError, NotADirectoryError)
"""Spawn errors that mean the spec is wrong (no such command, bad cwd), not that it is busy."""


def _is_unreachable(error: BaseException) -> bool:
    if isinstance(error, MCPError):
        return error.code == CONNECTION_CLOSED
    return isinstance(error, OSError | httpx2.HTTPError)


_Tokens = Sequence[tuple[contextvars.ContextVar[Any], contextvars.Token[Any]]]


def _apply(context: contextvars.Context | None) -> _Tokens:
    """Set each of the caller's context variables in the current task; see :func:`_restore`."""
    if context is None:
        return ()
    return [(var, var.set(value)) for var, value in context.items()]


def _restore(tokens: _Tokens) -> None:
    for var, token in reversed(tokens):
        var.reset(token)


class _Worker:
    def __init__(
        self,
        spec: ServerSpec,
        requests: trio.MemoryReceiveChannel[Envelope],
        hooks: WorkerHooks,
        name: str,
    ) -> None:
        self.spec = spec
        self.requests = requests
        self.hooks = hooks
        self.name = name
        self.redact = Redactor(spec)
        self.s2c = ServerSide(name).session(name)
        self.log = _log.bind(server=name)
        self.inflight: set[Envelope] = set()
        self.exit: WorkerExit | None = None
        self.link: Link = Link()
        self.http: HttpStatusLog | None = None
        self.keeper: CatalogKeeper | None = None
        self.early = CatalogKeeper(EMPTY_CATALOG, None, time_limit=0, log=self.log, redact=str)
        """Collects list changes announced before the first catalog was built."""
        self.serving = False
        self.ended = trio.Event()
        self.drain = False
        self.drained = trio.Event()
        self.nursery: trio.Nursery | None = None
        self.tasks = 0
        self.idle = 0

    # -- lifecycle ------------------------------------------------------------------------

    async def run(self, task_status: trio.TaskStatus[Ready]) -> WorkerExit:
        t = self.spec.timeouts
        start_bound = t.connect + t.initialize
        started = False
        self.log.debug("server.starting", transport=type(self.spec).__name__)
        # One scope bounds the start, then (after serving) the teardown; a scope of its own
        # around either would exit out of order with the session's nurseries.
        life = trio.CancelScope(deadline=trio.current_time() + start_bound)
        timed_out = StartError(
            self.name, "timeout", f"connect and initialize did not finish within {start_bound:g}s"
        )
        try:
            with life:
                async with AsyncExitStack() as stack:
                    client = await self._open(stack)
                    ready = await self._ready(client)
                    await self.s2c.prepare(client, t.request)
                    if self.link.lost.is_set():
                        raise self._start_error([])
                    life.deadline = math.inf
                    started = self.serving = True
                    task_status.started(ready)
                    self.log.info(
                        "server.started",
                        protocol_version=ready.protocol_version,
                        pid=ready.pid,
                        tools=len(ready.catalog.tools),
                    )
                    self.exit = await self._serve(client, ready)
                    life.deadline = trio.current_time() + t.shutdown
            if not started:
                raise timed_out
        except StartError as error:
            self.log.info("server.start_failed", kind=error.kind, cause=error.cause)
            raise
        except BaseException as exc:
            leaves = _leaves(exc)
            if not all(isinstance(leaf, Exception) for leaf in leaves):
                raise
            if not started:
                # The SDK may turn the deadline's cancellation into an error of its own.
                expired = life.cancel_called
                start_error = timed_out if expired else self._start_error(leaves)
                self.log.info("server.start_failed", kind=start_error.kind, cause=start_error.cause)
                raise start_error from None
            if self.exit is None:
                self._conclude(self._exit_from(leaves))
        finally:
            if started:
                self._finish_pending(
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

    async def _open(self, stack: AsyncExitStack) -> Client:
        spec, t = self.spec, self.spec.timeouts
        server: Any
        if isinstance(spec, StdioSpec):
            self.link = StdioTransport(
                spec, server=self.name, shutdown_timeout=t.shutdown, redact=self.redact
            )
            server = self.link
        elif isinstance(spec, HttpSpec):
            self.http = HttpStatusLog()
            http = await stack.enter_async_context(http_client(spec, self.http))
            self.link = server = WatchedTransport(
                streamable_http_client(spec.url, http_client=http)
            )
        elif isinstance(spec, SseSpec):
            inner = sse_client(
                spec.url,
                headers=dict(spec.headers),
                timeout=t.connect,
                sse_read_timeout=_SSE_READ_TIMEOUT,
            )
            self.link = server = WatchedTransport(inner)
        elif isinstance(spec, InProcessSpec):
            server = spec.server
        else:  # pragma: no cover - specs are validated
            raise StartError(self.name, "config", f"unsupported spec {type(spec).__name__}")
        self.link.on_lost = self._on_link_lost
        client = Client(
            server,
            mode=spec.protocol,
            client_info=_client_info(),
            message_handler=self._on_message,
            **self.s2c.client_kwargs(),
        )
        return await stack.enter_async_context(client)

    async def _ready(self, client: Client) -> Ready:
        try:
            catalog = await first_catalog(
                client, time_limit=self.spec.timeouts.request, log=self.log, redact=self.redact
            )
        except MCPError as error:
            if error.code == CONNECTION_CLOSED:
                raise
            raise StartError(
                self.name, "protocol", f"tools/list failed: {self._server_text(error)}"
            ) from None
        self.keeper = CatalogKeeper(
            catalog,
            self.hooks.on_catalog,
            time_limit=self.spec.timeouts.request,
            log=self.log,
            redact=self.redact,
        )
        # Announced while the first listings were in flight: they may predate the change.
        self.keeper.mark(*self.early.marked)
        return Ready(catalog=catalog, pid=self.link.pid)

    def _start_error(self, leaves: list[BaseException]) -> StartError:
        cause = self._describe(leaves)
        kind: StartErrorKind
        if self.link.lost.is_set():
            kind = "protocol" if self.link.kind == "protocol" else "exited"
            cause = self.link.cause or cause
        elif any(isinstance(e, _BAD_SPAWN) for e in leaves):
            kind = "config"
        elif self.http is not None and self.http.failures:
            # 401 (a wrong token) and 500 (a broken server) must read differently.
            kind = "connect"
            cause = f"the server answered {self.http.last}: {cause}"
        elif any(_is_unreachable(e) for e in leaves):
            kind = "connect"
        elif isinstance(self.spec, InProcessSpec) and not any(
            isinstance(e, MCPError) for e in leaves
        ):
            kind = "exited"  # the server's own code raised: it died while starting
        else:
            kind = "protocol"
        return StartError(self.name, kind, self.redact(cause))

    def _exit_from(self, leaves: list[BaseException]) -> WorkerExit:
        if self.link.lost.is_set():
            return self._exit_from_link()
        return WorkerExit("abnormal", f"the session failed: {self._describe(leaves)}")

    def _exit_from_link(self) -> WorkerExit:
        link = self.link
        returncode = link.returncode
        kind: ExitKind = "normal" if link.kind == "exited" and returncode == 0 else "abnormal"
        return WorkerExit(kind, self.redact(link.cause or "the connection was lost"), returncode)

    def _describe(self, leaves: Iterable[BaseException]) -> str:
        parts = []
        for leaf in leaves:
            text = str(leaf.error.message if isinstance(leaf, MCPError) else leaf)
            parts.append(f"{type(leaf).__name__}: {text}" if text else type(leaf).__name__)
        # Redacted before it is cut, so a secret at the cut cannot leak its first half.
        return self.redact("; ".join(parts[:3]))[:500] or "unknown error"

    def _server_text(self, error: MCPError) -> str:
        return self.redact(error.error.message)[:500]

    # -- the end of a session -------------------------------------------------------------

    def _conclude(self, exit: WorkerExit) -> bool:
        """Record the verdict (the first wins) and tell the owner of a loss at once."""
        if self.exit is not None:
            return False
        self.exit = exit
        if exit.kind != "stopped" and self.hooks.on_lost is not None:
            try:
                self.hooks.on_lost(exit.cause, exit.kind)
            except Exception:
                self.log.exception("server.hook_failed", hook="on_lost")
        return True

    def _finish(self, exit: WorkerExit, *, drain: bool = False) -> None:
        """End serving with ``exit`` (the first call wins), failing pending requests now.

        ``drain`` (the link was lost): calls in flight are left to collect the answers the
        transport already read; the SDK fails the rest with "connection closed" at once.
        """
        if not self._conclude(exit):
            return
        self.drain = drain
        self._fail_queued(exit.cause)
        if not drain:
            self._interrupt_inflight(exit.cause)
        if not self.inflight:
            self.drained.set()
        self.ended.set()

    def _on_link_lost(self, link: Link) -> None:
        if self.serving:
            self._finish(self._exit_from_link(), drain=True)

    def _finish_pending(self, cause: str) -> None:
        self._interrupt_inflight(cause)
        self._fail_queued(cause)

    def _interrupt_inflight(self, cause: str) -> None:
        for envelope in list(self.inflight):
            self._interrupt(envelope, cause)
        self.inflight.clear()

    def _fail_queued(self, cause: str) -> None:
        while True:
            try:
                envelope = self.requests.receive_nowait()
            except (trio.WouldBlock, trio.EndOfChannel, trio.ClosedResourceError):
                break
            self._interrupt(envelope, cause, sent=False)

    def _interrupt(self, envelope: Envelope, cause: str, *, sent: bool = True) -> None:
        error = RequestInterruptedError(self.name, envelope.operation.name, cause, sent=sent)
        envelope.reply.set_error(error)

    # -- serving --------------------------------------------------------------------------

    async def _serve(self, client: Client, ready: Ready) -> WorkerExit:
        t = self.spec.timeouts
        keeper = self.keeper
        assert keeper is not None
        async with trio.open_nursery() as nursery:
            self.nursery = nursery
            nursery.start_soon(keeper.refresher, client)
            nursery.start_soon(self.s2c.run, client, ready, t.request)
            if t.probe_interval is not None:
                nursery.start_soon(self._probes, client, ready)
            if ready.modern:
                nursery.start_soon(keeper.listen, client, t.request)
            self._add_serving_task(client, ready)
            await self.ended.wait()
            if self.drain:
                with trio.move_on_after(_ANSWER_GRACE):
                    await self.drained.wait()
            assert self.exit is not None
            self._finish_pending(self.exit.cause)
            nursery.cancel_scope.cancel()
        assert self.exit is not None
        return self.exit

    def _add_serving_task(self, client: Client, ready: Ready) -> None:
        assert self.nursery is not None
        self.tasks += 1
        self.nursery.start_soon(self._serving_task, client, ready)

    async def _serving_task(self, client: Client, ready: Ready) -> None:
        """Serve envelopes one after another until the session ends.

        Tasks are added only when every existing one is busy, up to ``max_concurrency``, and
        live as long as the session: no task is spawned per request, and an idle worker
        holds one.
        """
        requests = self.requests
        while self.exit is None:
            self.idle += 1
            try:
                # A queued envelope is taken without yielding; only an empty queue blocks.
                try:
                    envelope = requests.receive_nowait()
                except trio.WouldBlock:
                    envelope = await requests.receive()
            except (trio.EndOfChannel, trio.ClosedResourceError):
                self._finish(WorkerExit("stopped", _STOPPED))
                return
            finally:
                self.idle -= 1
            if self.exit is not None:
                self._interrupt(envelope, self.exit.cause, sent=False)
                return
            if self.idle == 0 and self.tasks < self.spec.max_concurrency:
                self._add_serving_task(client, ready)
            await self._serve_one(client, ready, envelope)

    async def _serve_one(self, client: Client, ready: Ready, envelope: Envelope) -> None:
        if envelope.reply.done:
            return
        scope = envelope.scope
        if scope.cancel_called:
            self._interrupt(envelope, "cancelled by the caller before it was sent", sent=False)
            return
        start = trio.current_time()
        # The caller's deadline, when it set one, replaces the server's default bound; the
        # caller's own scope carries it, so a request costs one cancel scope.
        deadline = (
            envelope.deadline
            if math.isfinite(envelope.deadline)
            else start + self.spec.timeouts.request
        )
        scope.deadline = min(scope.deadline, deadline)
        self.inflight.add(envelope)
        tokens = _apply(envelope.context)
        try:
            with scope:
                try:
                    result = await envelope.operation.perform(client, ready)
                except MCPError as error:
                    self._on_mcp_error(envelope, error)
                except Exception as error:
                    envelope.reply.set_error(error)
                else:
                    envelope.reply.set_result(result)
            if scope.cancelled_caught:
                if trio.current_time() >= deadline:
                    timeout = RequestTimeoutError(
                        self.name, envelope.operation.name, deadline - start
                    )
                    envelope.reply.set_error(timeout)
                else:
                    self._interrupt(envelope, "cancelled by the caller")
        finally:
            _restore(tokens)
            # Unanswered means the worker itself is ending: its cleanup answers the reply.
            if envelope.reply.done:
                self.inflight.discard(envelope)
                if self.exit is not None and not self.inflight:
                    self.drained.set()

    def _on_mcp_error(self, envelope: Envelope, error: MCPError) -> None:
        if self.http is not None and is_session_gone(error):
            self._session_gone(error)
        elif error.code == CONNECTION_CLOSED:
            # The link's own verdict (with the exit status) is usually in by now.
            if self.link.lost.is_set() and self.serving:
                self._finish(self._exit_from_link(), drain=True)
            else:
                cause = f"the connection closed ({self._server_text(error)})"
                self._finish(WorkerExit("abnormal", cause))
        else:
            envelope.reply.set_error(self._for_host(error))
            return
        # The session is over (perhaps already being stopped): the caller learns that, not
        # the transport's own error.
        assert self.exit is not None
        self._interrupt(envelope, self.exit.cause)

    def _for_host(self, error: MCPError) -> MCPError:
        """The server's error as the host may see it: redacted, with the HTTP status if any."""
        message = error.error.message
        text = self.redact(message)
        if message == _HTTP_STAND_IN and self.http is not None and self.http.last is not None:
            text = f"{message} ({self.http.last})"
        data = error.error.data
        if isinstance(data, str):
            data = self.redact(data)
        if text == message and data is error.error.data:
            return error
        return MCPError(code=error.code, message=text, data=data)

    def _session_gone(self, error: MCPError) -> None:
        said = self._server_text(error)
        if self.http is not None and self.http.last is not None:
            said = f"{self.http.last}: {said}"
        self._finish(
            WorkerExit(
                "abnormal",
                f"the server no longer knows this session ({said}); it has probably restarted",
            )
        )

    # -- health and list changes ------------------------------------------------------------

    async def _probes(self, client: Client, ready: Ready) -> None:
        await probe_loop(
            client,
            ready,
            self.spec.timeouts,
            http=self.http,
            on_failed=lambda cause: self._finish(WorkerExit("abnormal", cause)),
            on_session_gone=self._session_gone,
            log=self.log,
            redact=self.redact,
        )

    async def _on_message(self, message: IncomingMessage) -> None:
        self.s2c.on_message(message)
        if (self.keeper or self.early).notice(message):
            pass
        elif isinstance(message, Exception):
            self.log.debug("server.transport_error", error=self._describe([message]))
        await trio.lowlevel.checkpoint()
