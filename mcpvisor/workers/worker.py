"""One Trio task owns one server's session and serves requests from a memory channel.

A session must be entered and exited by the same task (mcp-sdk-notes §1), so
:func:`run_worker` is that task: it opens the session, reports readiness through
``nursery.start``, serves :class:`~mcpvisor.workers.requests.Envelope` s concurrently until the
server goes away or its owner closes the channel, tears the session down, and returns a
:class:`WorkerExit` saying how it ended. Restarting is the owner's business.
"""

from __future__ import annotations

import contextlib
import contextvars
import math
from collections.abc import Callable, Iterable, Iterator
from contextlib import AsyncExitStack
from importlib.metadata import PackageNotFoundError, version
from typing import Any, Literal, TypeAlias

import attrs
import httpx2
import mcp_types as types
import trio
from mcp import Client
from mcp.client._transport import Transport
from mcp.client.session import IncomingMessage
from mcp.client.sse import sse_client
from mcp.client.streamable_http import streamable_http_client
from mcp.client.subscriptions import (
    ListenNotSupportedError,
    PromptsListChanged,
    ResourcesListChanged,
    SubscriptionLost,
    ToolsListChanged,
)
from mcp.shared.exceptions import MCPError
from mcp_types import CONNECTION_CLOSED, INVALID_REQUEST, METHOD_NOT_FOUND
from mcp_types.version import MODERN_PROTOCOL_VERSIONS

from mcpvisor.specs import HttpSpec, InProcessSpec, ServerSpec, SseSpec, StdioSpec
from mcpvisor.specs._logging import library_logger
from mcpvisor.specs.secrets import Redactor
from mcpvisor.workers.callbacks import ServerSide
from mcpvisor.workers.errors import (
    RequestInterruptedError,
    RequestTimeoutError,
    StartError,
    StartErrorKind,
)
from mcpvisor.workers.requests import Envelope, Request
from mcpvisor.workers.transports import Link, StdioTransport, WatchedTransport

_log = library_logger()

ProtocolMode: TypeAlias = Literal["auto", "legacy"]
"""``auto`` probes ``server/discover`` (2026-07-28) and falls back to the ``initialize``
handshake; ``legacy`` goes straight to the handshake."""

ExitKind: TypeAlias = Literal["normal", "abnormal", "stopped"]

MAX_LIST_PAGES = 100
"""Pages fetched when listing everything; a paginator that never ends cannot hang a worker."""

_SSE_READ_TIMEOUT = 24 * 3600.0
"""SSE streams idle between events; liveness is the probes' job, not a read timeout's."""

_LISTEN_RETRY_MAX = 30.0


def _client_info() -> types.Implementation:
    try:
        ours = version("mcpvisor")
    except PackageNotFoundError:  # pragma: no cover - running from a bare checkout
        ours = "0"
    return types.Implementation(name="mcpvisor", version=ours)


@attrs.frozen
class Ready:
    """What a started worker reports through ``nursery.start``: the server as first seen.

    ``tools`` (and ``resources``, ``resource_templates``, ``prompts`` when the server's
    capabilities include them) are complete listings, fetched past every page. ``pid`` is the
    stdio child's pid, which is also its process group id; None for other transports.
    """

    server_info: types.Implementation | None
    capabilities: types.ServerCapabilities
    protocol_version: str
    instructions: str | None
    tools: tuple[types.Tool, ...]
    resources: tuple[types.Resource, ...] = ()
    resource_templates: tuple[types.ResourceTemplate, ...] = ()
    prompts: tuple[types.Prompt, ...] = ()
    pid: int | None = None

    @property
    def modern(self) -> bool:
        """Whether the session speaks the 2026-07-28 era (no ``ping``, ``listen`` instead)."""
        return self.protocol_version in MODERN_PROTOCOL_VERSIONS


@attrs.frozen
class WorkerExit:
    """How a worker's session ended, once it had been ready.

    - ``normal``: the server ended cleanly (a stdio process that exited with code 0).
    - ``abnormal``: a crash, a signal, a lost connection, an expired HTTP session, too many
      missed health probes, a protocol violation.
    - ``stopped``: the owner closed the request channel.

    ``cause`` is safe to log. ``returncode`` is the stdio exit status when the process exited
    on its own; negative for a signal, as in :mod:`subprocess`.
    """

    kind: ExitKind
    cause: str
    returncode: int | None = None


@attrs.frozen
class WorkerHooks:
    """Callbacks a worker makes while serving. Each is optional, synchronous and must not block.

    - ``on_tools_changed(tools)``: the server's tool list changed (a ``list_changed``
      notification, or a ``listen`` event in the 2026-07-28 era) and was refetched.
    - ``on_resources_changed(resources, templates)`` / ``on_prompts_changed(prompts)``: the
      same for resources (with their templates) and prompts.

    A listing that comes back unchanged makes no call. A hook that raises is logged and
    otherwise ignored.
    """

    on_tools_changed: Callable[[tuple[types.Tool, ...]], None] | None = None
    on_resources_changed: (
        Callable[[tuple[types.Resource, ...], tuple[types.ResourceTemplate, ...]], None] | None
    ) = None
    on_prompts_changed: Callable[[tuple[types.Prompt, ...]], None] | None = None


async def run_worker(
    spec: ServerSpec,
    requests: trio.MemoryReceiveChannel[Envelope],
    hooks: WorkerHooks | None = None,
    *,
    label: str | None = None,
    mode: ProtocolMode = "auto",
    server_side: ServerSide | None = None,
    task_status: trio.TaskStatus[Ready] = trio.TASK_STATUS_IGNORED,
) -> WorkerExit:
    """Own one session to the server ``spec`` describes, serving ``requests`` until it ends.

    Start with ``ready = await nursery.start(run_worker, spec, receive_channel)``. Connecting
    plus the handshake may take ``timeouts.connect + timeouts.initialize`` seconds; a failure
    raises :class:`StartError` from ``nursery.start`` with nothing left running.

    Once ready, each :class:`Envelope` received is served concurrently, at most
    ``spec.max_concurrency`` at once (further envelopes wait in the channel), inside its
    ``scope`` and under ``min(envelope.deadline, now + timeouts.request)``. Its reply gets the
    SDK result, the server's JSON-RPC error as the SDK's ``MCPError`` unchanged, a
    :class:`RequestTimeoutError`, or a :class:`RequestInterruptedError` when the session ends
    first. An envelope whose scope is already cancelled when it is dequeued is not sent.

    Returns a :class:`WorkerExit` after teardown:

    - the server went away (process exit, closed connection, expired HTTP session,
      ``timeouts.probe_misses`` consecutive failed probes): ``normal`` or ``abnormal``;
    - the owner closed the send side of ``requests``: ``stopped``.

    Either way every request in flight, and every envelope still queued, fails at once with
    :class:`RequestInterruptedError`; envelopes that arrive during teardown fail when it ends.
    ``requests`` is left open (the owner owns it). A failed start leaves its queue untouched,
    for the owner to retry with. Teardown is bounded by ``timeouts.shutdown``; a stdio
    server's whole process group is killed and the child reaped. If the worker is cancelled
    instead, it tears down the same way and lets the cancellation propagate.

    ``label`` names the server in logs and errors (default ``spec.name``); ``mode`` picks how
    the protocol era is negotiated (see :data:`ProtocolMode`). ``server_side`` holds the
    host's handlers, subscriptions and roots for this server (none: answer nothing).
    """
    worker = _Worker(spec, requests, hooks or WorkerHooks(), label or spec.name, mode)
    worker.s2c = (server_side or ServerSide(worker.name)).session(worker.name, redact=worker.redact)
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


def _is_session_gone(error: MCPError) -> bool:
    """An HTTP session the server no longer knows: 404 after a restart, or a terminated one."""
    message = error.error.message.lower()
    return error.code == INVALID_REQUEST and (
        "session not found" in message or "session terminated" in message
    )


class _Worker:
    def __init__(
        self,
        spec: ServerSpec,
        requests: trio.MemoryReceiveChannel[Envelope],
        hooks: WorkerHooks,
        name: str,
        mode: ProtocolMode,
    ) -> None:
        self.spec = spec
        self.requests = requests
        self.hooks = hooks
        self.name = name
        self.mode = mode
        self.redact = Redactor(spec)
        self.log = _log.bind(server=name)
        self.limiter = trio.CapacityLimiter(spec.max_concurrency)
        self.inflight: set[Envelope] = set()
        self.exit: WorkerExit | None = None
        self.link: Link = Link()
        self.serve_scope: trio.CancelScope | None = None
        self.dirty: set[str] = set()
        self.wake = trio.Event()
        self.known: dict[str, Any] = {}
        self.s2c = ServerSide(name).session(name)

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
                    life.deadline = math.inf
                    started = True
                    task_status.started(ready)
                    self.log.info(
                        "server.started",
                        protocol_version=ready.protocol_version,
                        pid=ready.pid,
                        tools=len(ready.tools),
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
                self.exit = self._exit_from(leaves)
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
            http = await stack.enter_async_context(
                httpx2.AsyncClient(
                    headers=dict(spec.headers),
                    timeout=httpx2.Timeout(t.connect, read=max(300.0, t.request + t.probe_timeout)),
                )
            )
            inner: Transport = streamable_http_client(spec.url, http_client=http)
            self.link = server = WatchedTransport(inner)
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
        client = Client(
            server,
            mode=spec.protocol if spec.protocol != "auto" else self.mode,
            client_info=_client_info(),
            message_handler=self._on_message,
            **self.s2c.client_kwargs(),
        )
        return await stack.enter_async_context(client)

    async def _ready(self, client: Client) -> Ready:
        caps = client.server_capabilities
        try:
            tools = await self._list_all(client, "tools") if caps.tools is not None else ()
        except MCPError as error:
            raise StartError(
                self.name, "protocol", f"tools/list failed: {self.redact(error.error.message)}"
            ) from None
        resources: tuple[types.Resource, ...] = ()
        templates: tuple[types.ResourceTemplate, ...] = ()
        prompts: tuple[types.Prompt, ...] = ()
        if caps.resources is not None:
            resources = await self._optional_list(client, "resources")
            templates = await self._optional_list(client, "resource_templates")
        if caps.prompts is not None:
            prompts = await self._optional_list(client, "prompts")
        self.known = {
            "tools": tools,
            "resources": resources,
            "resource_templates": templates,
            "prompts": prompts,
        }
        return Ready(
            server_info=client.server_info,
            capabilities=caps,
            protocol_version=client.protocol_version,
            instructions=client.instructions,
            tools=tools,
            resources=resources,
            resource_templates=templates,
            prompts=prompts,
            pid=self.link.pid,
        )

    async def _optional_list(self, client: Client, kind: str) -> tuple[Any, ...]:
        try:
            return await self._list_all(client, kind)
        except MCPError as error:
            if error.code == CONNECTION_CLOSED:
                raise
            self.log.warning("server.list_failed", what=kind, error=error.error.message)
            return ()

    async def _list_all(self, client: Client, kind: str) -> tuple[Any, ...]:
        """Every page of a listing, bypassing the client's response cache."""
        items: list[Any] = []
        cursor: str | None = None
        for _ in range(MAX_LIST_PAGES):
            if kind == "tools":
                page: Any = await client.list_tools(cursor=cursor, cache_mode="refresh")
                items += page.tools
            elif kind == "resources":
                page = await client.list_resources(cursor=cursor, cache_mode="refresh")
                items += page.resources
            elif kind == "resource_templates":
                page = await client.list_resource_templates(cursor=cursor, cache_mode="refresh")
                items += page.resource_templates
            else:
                page = await client.list_prompts(cursor=cursor, cache_mode="refresh")
                items += page.prompts
            cursor = page.next_cursor
            if cursor is None:
                break
        return tuple(items)

    def _start_error(self, leaves: list[BaseException]) -> StartError:
        cause = self._describe(leaves)
        kind: StartErrorKind
        if self.link.lost.is_set():
            kind = "protocol" if self.link.kind == "protocol" else "exited"
            cause = self.link.cause or cause
        elif any(isinstance(e, _BAD_SPAWN) for e in leaves):
            kind = "config"
        elif any(_is_unreachable(e) for e in leaves):
            kind = "connect"
        elif isinstance(self.spec, InProcessSpec) and not any(
            isinstance(e, MCPError) for e in leaves
        ):
            kind = "exited"  # the server's own code raised: it died while starting
        else:
            kind = "protocol"
        return StartError(self.name, kind, cause)

    def _exit_from(self, leaves: list[BaseException]) -> WorkerExit:
        if self.link.lost.is_set():
            return self._exit_from_link()
        return WorkerExit("abnormal", f"the session failed: {self._describe(leaves)}")

    def _exit_from_link(self) -> WorkerExit:
        link = self.link
        returncode = link.returncode
        kind: ExitKind = "normal" if link.kind == "exited" and returncode == 0 else "abnormal"
        return WorkerExit(kind, link.cause or "the connection was lost", returncode)

    def _describe(self, leaves: Iterable[BaseException]) -> str:
        parts = []
        for leaf in leaves:
            text = str(leaf.error.message if isinstance(leaf, MCPError) else leaf)
            parts.append(f"{type(leaf).__name__}: {text}" if text else type(leaf).__name__)
        return self.redact("; ".join(parts[:3]))[:500] or "unknown error"

    # -- serving --------------------------------------------------------------------------

    async def _serve(self, client: Client, ready: Ready) -> WorkerExit:
        t = self.spec.timeouts
        async with trio.open_nursery() as nursery:
            self.serve_scope = nursery.cancel_scope
            nursery.start_soon(self._watch_link)
            nursery.start_soon(self._refresher, client)
            nursery.start_soon(self.s2c.run, client, ready, t.request)
            if t.probe_interval is not None:
                nursery.start_soon(self._probe_loop, client, ready, t.probe_interval)
            if ready.modern:
                nursery.start_soon(self._listen_loop, client, ready.capabilities)
            while True:
                token = object()
                # Each scheduler pass is a measurable share of an in-process call: take a free
                # slot and a queued envelope without yielding, and block only when there is none.
                try:
                    self.limiter.acquire_on_behalf_of_nowait(token)
                except trio.WouldBlock:
                    await self.limiter.acquire_on_behalf_of(token)
                try:
                    try:
                        envelope = self.requests.receive_nowait()
                    except trio.WouldBlock:
                        envelope = await self.requests.receive()
                except (trio.EndOfChannel, trio.ClosedResourceError):
                    self.limiter.release_on_behalf_of(token)
                    self._finish(WorkerExit("stopped", "stopped by its owner"))
                    break
                except BaseException:
                    self.limiter.release_on_behalf_of(token)
                    raise
                nursery.start_soon(self._serve_one, client, ready, envelope, token)
        assert self.exit is not None
        return self.exit

    def _finish(self, exit: WorkerExit) -> None:
        """End serving with ``exit`` (the first call wins), failing every pending request now."""
        if self.exit is not None:
            return
        self.exit = exit
        self._finish_pending(exit.cause)
        if self.serve_scope is not None:
            self.serve_scope.cancel()

    def _finish_pending(self, cause: str) -> None:
        for envelope in list(self.inflight):
            self._interrupt(envelope, cause)
        self.inflight.clear()
        while True:
            try:
                envelope = self.requests.receive_nowait()
            except (trio.WouldBlock, trio.EndOfChannel, trio.ClosedResourceError):
                break
            self._interrupt(envelope, cause, sent=False)

    def _interrupt(self, envelope: Envelope, cause: str, *, sent: bool = True) -> None:
        error = RequestInterruptedError(self.name, envelope.request.op, cause, sent=sent)
        envelope.reply.set_error(error)

    async def _watch_link(self) -> None:
        await self.link.lost.wait()
        self._finish(self._exit_from_link())

    async def _serve_one(
        self, client: Client, ready: Ready, envelope: Envelope, token: object
    ) -> None:
        op = envelope.request.op
        try:
            if envelope.reply.done:
                return
            if envelope.scope.cancel_called:
                self._interrupt(envelope, "cancelled by the caller before it was sent", sent=False)
                return
            self.inflight.add(envelope)
            start = trio.current_time()
            # The caller's deadline, when it set one, replaces the server's default bound.
            if math.isfinite(envelope.deadline):
                deadline = envelope.deadline
            else:
                deadline = start + self.spec.timeouts.request
            with envelope.scope:
                with trio.CancelScope(deadline=deadline) as timer:
                    try:
                        with _applied(envelope.context):
                            result = await _perform(client, ready, envelope.request)
                    except MCPError as error:
                        self._on_mcp_error(envelope, error)
                    except Exception as error:
                        envelope.reply.set_error(error)
                    else:
                        envelope.reply.set_result(result)
                if timer.cancelled_caught:
                    envelope.reply.set_error(RequestTimeoutError(self.name, op, deadline - start))
            if envelope.scope.cancelled_caught:
                self._interrupt(envelope, "cancelled by the caller")
        finally:
            # Unanswered means the worker itself is ending: its cleanup answers the reply.
            if envelope.reply.done:
                self.inflight.discard(envelope)
            self.limiter.release_on_behalf_of(token)

    def _on_mcp_error(self, envelope: Envelope, error: MCPError) -> None:
        if error.code == CONNECTION_CLOSED:
            # Let the link's own verdict (with the exit status) win if it has one by now.
            if self.link.lost.is_set():
                self._finish(self._exit_from_link())
            else:
                message = self.redact(error.error.message)
                self._finish(WorkerExit("abnormal", f"the connection closed ({message})"))
        elif _is_session_gone(error):
            self._finish(
                WorkerExit(
                    "abnormal",
                    f"the server no longer knows this session ({error.error.message}); "
                    "it has probably restarted",
                )
            )
        else:
            envelope.reply.set_error(error)
            return
        # The session is over (perhaps already being stopped): the caller learns that, not
        # the transport's own error.
        assert self.exit is not None
        self._interrupt(envelope, self.exit.cause)

    # -- health -----------------------------------------------------------------------------

    async def _probe_loop(self, client: Client, ready: Ready, interval: float) -> None:
        t = self.spec.timeouts
        misses = 0
        while True:
            await trio.sleep(interval)
            problem: str | None = None
            with trio.move_on_after(t.probe_timeout) as timer:
                try:
                    await _probe(client, ready)
                except MCPError as error:
                    # Any JSON-RPC answer proves the server is alive; a closed connection does not.
                    if error.code == CONNECTION_CLOSED:
                        problem = "the connection is closed"
                except Exception as error:
                    problem = self._describe([error])
            if timer.cancelled_caught:
                problem = f"no answer within {t.probe_timeout:g}s"
            if problem is None:
                misses = 0
                continue
            misses += 1
            self.log.warning("server.probe_missed", misses=misses, problem=problem)
            if misses >= t.probe_misses:
                self._finish(
                    WorkerExit("abnormal", f"{misses} consecutive health probes failed: {problem}")
                )
                return

    # -- list changes -------------------------------------------------------------------------

    def _mark(self, *kinds: str) -> None:
        self.dirty.update(kinds)
        self.wake.set()

    async def _on_message(self, message: IncomingMessage) -> None:
        self.s2c.on_message(message)
        if isinstance(message, types.ToolListChangedNotification):
            self._mark("tools")
        elif isinstance(message, types.ResourceListChangedNotification):
            self._mark("resources")
        elif isinstance(message, types.PromptListChangedNotification):
            self._mark("prompts")
        elif isinstance(message, Exception):
            self.log.debug("server.transport_error", error=self._describe([message]))
        await trio.lowlevel.checkpoint()

    async def _listen_loop(self, client: Client, caps: types.ServerCapabilities) -> None:
        """2026-07-28 sessions learn of list changes through ``subscriptions/listen``."""
        tools = bool(caps.tools and caps.tools.list_changed)
        resources = bool(caps.resources and caps.resources.list_changed)
        prompts = bool(caps.prompts and caps.prompts.list_changed)
        if not (tools or resources or prompts):
            return
        kinds = [
            k for k, on in (("tools", tools), ("resources", resources), ("prompts", prompts)) if on
        ]
        delay = 1.0
        while True:
            try:
                # Bounds the wait for the acknowledgment only; lifted once subscribed.
                ack_deadline = trio.current_time() + self.spec.timeouts.request
                with trio.CancelScope(deadline=ack_deadline) as ack_scope:
                    async with client.listen(
                        tools_list_changed=tools,
                        resources_list_changed=resources,
                        prompts_list_changed=prompts,
                    ) as subscription:
                        ack_scope.deadline = math.inf
                        delay = 1.0
                        # Changes between the last listing and the acknowledgment would be lost.
                        self._mark(*kinds)
                        async for event in subscription:
                            if isinstance(event, ToolsListChanged):
                                self._mark("tools")
                            elif isinstance(event, ResourcesListChanged):
                                self._mark("resources")
                            elif isinstance(event, PromptsListChanged):
                                self._mark("prompts")
            except ListenNotSupportedError:
                return
            except MCPError as error:
                if error.code in (METHOD_NOT_FOUND, CONNECTION_CLOSED):
                    return
                self.log.debug("server.listen_failed", error=error.error.message)
            except (SubscriptionLost, TimeoutError) as error:
                self.log.debug("server.listen_lost", error=self._describe([error]))
            await trio.sleep(delay)
            delay = min(delay * 2, _LISTEN_RETRY_MAX)

    async def _refresher(self, client: Client) -> None:
        while True:
            await self.wake.wait()
            self.wake = trio.Event()
            kinds, self.dirty = self.dirty, set()
            for kind in ("tools", "resources", "prompts"):
                if kind in kinds:
                    await self._refresh(client, kind)

    async def _refresh(self, client: Client, kind: str) -> None:
        fetched: dict[str, tuple[Any, ...]] = {}
        with trio.move_on_after(self.spec.timeouts.request) as timer:
            try:
                if kind == "resources":
                    fetched["resources"] = await self._list_all(client, "resources")
                    fetched["resource_templates"] = await self._list_all(
                        client, "resource_templates"
                    )
                else:
                    fetched[kind] = await self._list_all(client, kind)
            except MCPError as error:
                self.log.warning("server.list_failed", what=kind, error=error.error.message)
                return
        if timer.cancelled_caught:
            self.log.warning("server.list_failed", what=kind, error="timed out")
            return
        if all(self.known.get(k) == v for k, v in fetched.items()):
            return
        self.known.update(fetched)
        self.log.debug("server.list_changed", what=kind)
        try:
            if kind == "tools" and self.hooks.on_tools_changed is not None:
                self.hooks.on_tools_changed(fetched["tools"])
            elif kind == "resources" and self.hooks.on_resources_changed is not None:
                self.hooks.on_resources_changed(fetched["resources"], fetched["resource_templates"])
            elif kind == "prompts" and self.hooks.on_prompts_changed is not None:
                self.hooks.on_prompts_changed(fetched["prompts"])
        except Exception:
            self.log.exception("server.hook_failed", what=kind)


@contextlib.contextmanager
def _applied(context: contextvars.Context | None) -> Iterator[None]:
    """The caller's context variables, set in this task for the block."""
    if context is None:
        yield
        return
    tokens = [(var, var.set(value)) for var, value in context.items()]
    try:
        yield
    finally:
        for var, token in reversed(tokens):
            var.reset(token)


async def _probe(client: Client, ready: Ready) -> None:
    """A cheap request that proves the server answers: ``ping``, which 2026-07-28 removed."""
    if ready.modern:
        await client.list_tools(cache_mode="bypass")
    else:
        await client.session.send_ping()


async def _perform(client: Client, ready: Ready, request: Request) -> object:
    args = request.args
    match request.op:
        case "list_tools":
            return await client.list_tools(
                cursor=args.get("cursor"), cache_mode=args.get("cache_mode", "use")
            )
        case "list_resources":
            return await client.list_resources(
                cursor=args.get("cursor"), cache_mode=args.get("cache_mode", "use")
            )
        case "list_resource_templates":
            return await client.list_resource_templates(
                cursor=args.get("cursor"), cache_mode=args.get("cache_mode", "use")
            )
        case "list_prompts":
            return await client.list_prompts(
                cursor=args.get("cursor"), cache_mode=args.get("cache_mode", "use")
            )
        case "call_tool":
            return await client.call_tool(
                args["name"],
                args.get("arguments"),
                progress_callback=request.progress,
                meta=args.get("meta"),
            )
        case "read_resource":
            return await client.read_resource(args["uri"])
        case "get_prompt":
            return await client.get_prompt(args["name"], args.get("arguments"))
        case "complete":
            return await client.complete(
                args["ref"], args["argument"], args.get("context_arguments")
            )
        case "probe":
            await _probe(client, ready)
            return None
    raise ValueError(f"unknown operation {request.op!r}")  # pragma: no cover
