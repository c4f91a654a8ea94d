"""The client side of server-to-client traffic: the SDK callbacks a worker's session is built with.

Two objects, with two lifetimes:

- :class:`ServerSide` lives as long as the server is supervised, across restarts. It holds what
  the host wants every session of that server to have: the effective :class:`ClientHandlers`,
  the resource subscriptions and the roots. Changing it tells every live session at once.
- :class:`SessionCallbacks` lives for one session. Its methods are the ``sampling_callback``,
  ``elicitation_callback``, ``list_roots_callback`` and ``logging_callback`` of the SDK
  ``Client``; only those with a handler behind them are passed, so the session advertises
  exactly those capabilities. It re-applies the :class:`ServerSide` state when the session is
  ready (log level, subscriptions, roots) and follows later changes, in a task that runs only
  while there is something to apply or a ``listen`` stream to hold
  (:meth:`~SessionCallbacks.start`).

A request may carry handlers of its own (:func:`routed`): they answer the questions the server
asks while that request runs, where the transport says which request asked. The 2026-07-28
input-required flow runs in the caller's task, and streamable HTTP delivers a request's
server-to-client messages in the context of the POST that carried it, so both can tell. A
2025-era stdio (or SSE, or in-process) session cannot: the supervisor routes such a request
through an isolated session instead (see :func:`can_route`).
"""

from __future__ import annotations

import contextvars
import inspect
import json
import math
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, Final

import attrs
import mcp_types as types
import trio
from mcp.client.session import ClientRequestContext, IncomingMessage
from mcp.client.subscriptions import ListenNotSupportedError, SubscriptionLost
from mcp.client.subscriptions import ResourceUpdated as _ListenUpdated
from mcp.shared.exceptions import MCPError
from mcp_types import INTERNAL_ERROR, INVALID_REQUEST
from mcp_types.version import MODERN_PROTOCOL_VERSIONS

from mcpvisor.specs._logging import server_logger
from mcpvisor.specs.handlers import (
    LOG_LEVELS,
    NO_HANDLERS,
    ClientHandlers,
    HandlerContext,
    LogLevel,
    ServerLog,
)

if TYPE_CHECKING:
    from mcp import Client

    from mcpvisor.workers.reports import Ready

LOG_RATE: Final = 200.0
"""Server log records per second a session turns into structlog records (sustained)."""
LOG_BURST: Final = 1000
"""Records a session may emit at once before :data:`LOG_RATE` applies. Past both, records are
counted and dropped, and one ``server.log_dropped`` record says how many."""

_STDLIB_METHOD: Final[dict[str, str]] = {
    "debug": "debug",
    "info": "info",
    "notice": "info",
    "warning": "warning",
    "error": "error",
    "critical": "critical",
    "alert": "critical",
    "emergency": "critical",
}

_NONE: Final[frozenset[str]] = frozenset()
"""Shared: each ``frozenset()`` call allocates an empty set of its own (216 bytes)."""

_ROUTED: ContextVar[ClientHandlers | None] = ContextVar("mcpvisor_routed_handlers", default=None)


@contextmanager
def routed(handlers: ClientHandlers | None) -> Iterator[None]:
    """Within the block, the server's questions during this task's requests go to ``handlers``.

    Fields left None fall back to the session's own handlers. The worker applies the caller's
    context variables while it serves the request, so setting this around a
    :class:`~mcpvisor.SupervisorClient` call is enough.
    """
    token = _ROUTED.set(handlers)
    try:
        yield
    finally:
        _ROUTED.reset(token)


def can_route(ready: Ready, transport: str) -> bool:
    """Whether a live session can tell which request a server's question belongs to.

    True for 2026-07-28 sessions (questions come back inside the request's own result) and for
    streamable HTTP (they arrive on the request's own response stream); False for 2025-era
    stdio, SSE and in-process sessions, whose questions share one stream.
    """
    return ready.protocol_version in MODERN_PROTOCOL_VERSIONS or transport == "http"


@attrs.frozen
class ResourceUpdated:
    """The server said the resource at ``uri`` changed (``notifications/resources/updated``, or a
    ``subscriptions/listen`` event in the 2026-07-28 era); read it again to see how.

    ``server`` is the configured server; ``session`` its label (``server~N`` for an isolated
    one); ``at`` is trio's clock.
    """

    server: str
    session: str
    uri: str
    at: float


def _as_roots(value: object) -> tuple[types.Root, ...]:
    """Roots from a handler's answer or a host call: ``Root`` objects or ``file://`` strings."""
    if isinstance(value, str) or not isinstance(value, Iterable):
        raise TypeError("roots must be a list of file:// URIs or Root objects")
    out = []
    for item in value:
        out.append(item if isinstance(item, types.Root) else types.Root(uri=item))
    return tuple(out)


ANSWERING: Final[ContextVar[list[int] | None]] = ContextVar("mcpvisor_answering", default=None)
"""Set by the worker around each call it performs: how many of the host's handlers answer a
question of the server's for that call right now. In a 2026-07-28 round they run in the
call's own task, awaiting nothing from the transport, so a lost link must end them itself."""


class ServerSide:
    """What every session of one server should have, kept across its restarts.

    The runtime keeps one per supervised server (and one per isolated session); workers read
    it when they open a session and follow it while they serve.
    """

    __slots__ = (
        "_changed",
        "_idle",
        "_live",
        "_settled",
        "handlers",
        "on_updated",
        "roots_version",
        "routed",
        "server",
        "subscriptions",
        "version",
    )

    def __init__(
        self,
        server: str,
        handlers: ClientHandlers = NO_HANDLERS,
        *,
        on_updated: Callable[[ResourceUpdated], None] | None = None,
    ) -> None:
        self.server = server
        self.handlers = handlers
        self.on_updated = on_updated
        self.subscriptions: frozenset[str] = _NONE
        self.roots_version = 0
        self.routed: ClientHandlers | None = None
        """Handlers an isolated session was opened with for one caller: they answer as routed."""
        self.version = 0
        """Counts changes, so a session applying them can tell whether another came meanwhile."""
        self._changed: trio.Event | None = None
        self._idle: dict[SessionCallbacks, None] = {}
        """Live sessions with nothing to apply: each starts its task again at the next change."""
        self._live: dict[SessionCallbacks, None] = {}
        """Sessions from their preparation to their end: what :meth:`settle` waits for."""
        self._settled: trio.Event | None = None

    # -- what the host changes ------------------------------------------------------------

    def set_handlers(self, handlers: ClientHandlers) -> None:
        """Answer with ``handlers`` from now on. Capabilities are advertised at session start,
        so one newly given (or taken away) shows from the next restart; a change of roots is
        announced to live sessions at once."""
        roots_changed = handlers.roots is not self.handlers.roots
        self.handlers = handlers
        if roots_changed:
            self.roots_version += 1
        self._bump()

    def set_roots(self, roots: Iterable[str | types.Root] | Any) -> None:
        """Replace the roots (a list of ``file://`` URIs, or a roots handler) and tell every live
        session (``notifications/roots/list_changed`` where the era has it)."""
        value = roots if callable(roots) else _as_roots(roots)
        self.set_handlers(attrs.evolve(self.handlers, roots=value))

    def subscribe(self, uri: str) -> None:
        """Keep a subscription to ``uri`` on this and every later session."""
        if uri not in self.subscriptions:
            self.subscriptions = self.subscriptions | {uri}
            self._bump()

    def unsubscribe(self, uri: str) -> None:
        """Stop the subscription to ``uri``; unknown URIs are ignored."""
        if uri in self.subscriptions:
            self.subscriptions = self.subscriptions - {uri}
            self._bump()

    def _bump(self) -> None:
        self.version += 1
        if self._changed is not None:
            self._changed.set()
            self._changed = None
        idle, self._idle = self._idle, {}
        for session in idle:
            session._spawn()

    async def wait_changed(self) -> None:
        """Return at the next change."""
        if self._changed is None:
            self._changed = trio.Event()
        await self._changed.wait()

    async def settle(self) -> None:
        """Return once every session has applied the changes made so far, or has ended.

        What "applied" means is the session's to say: a 2025-era session has sent the
        requests and notifications (answered or refused); a 2026-07-28 one holds a
        ``listen`` stream the server acknowledged for the current subscriptions.
        """
        version = self.version
        while any(session.applied < version for session in self._live):
            if self._settled is None:
                self._settled = trio.Event()
            await self._settled.wait()

    def _progressed(self) -> None:
        if self._settled is not None:
            self._settled.set()
            self._settled = None

    def session(
        self, label: str, *, redact: Callable[[str], str] = str, log: Any = None
    ) -> SessionCallbacks:
        """The callbacks for one new session of this server, labelled ``label``, logging to
        ``log`` (default: the library logger bound to ``label``)."""
        return SessionCallbacks(self, label, redact, log)


class _LogBucket:
    """A token bucket on trio's clock: at most :data:`LOG_BURST` at once, :data:`LOG_RATE`/s."""

    __slots__ = ("dropped", "stamp", "tokens")

    def __init__(self) -> None:
        self.tokens = float(LOG_BURST)
        self.stamp = -math.inf
        self.dropped = 0

    def take(self) -> bool:
        now = trio.current_time()
        if self.stamp != -math.inf:
            self.tokens = min(float(LOG_BURST), self.tokens + (now - self.stamp) * LOG_RATE)
        self.stamp = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        self.dropped += 1
        return False


class SessionCallbacks:
    """The SDK callbacks of one session, and the task that keeps its state as the host wants."""

    __slots__ = (
        "_applied_subscriptions",
        "_bucket",
        "_following",
        "_held",
        "_level",
        "_listening",
        "_roots_version",
        "_running",
        "applied",
        "handlers",
        "label",
        "log",
        "protocol_version",
        "redact",
        "side",
    )

    def __init__(
        self, side: ServerSide, label: str, redact: Callable[[str], str], log: Any = None
    ) -> None:
        self.side = side
        self.label = label
        self.redact = redact
        self.handlers = side.handlers
        self.protocol_version: str | None = None
        self.log = server_logger(label) if log is None else log
        self._bucket = _LogBucket()
        self._applied_subscriptions: frozenset[str] = _NONE
        self._level: LogLevel | None = None
        self._roots_version = side.roots_version
        self._following: _Following | None = None
        self._running = False
        self._listening = False
        """A listen stream is open: it reports each update, which the SDK also delivers as a
        notification (see :meth:`on_message`)."""
        self._held = False
        """The 2026-07-28 subscriptions are in effect, as far as the server can have them."""
        self.applied = -1
        """The :attr:`ServerSide.version` whose state this session has in effect."""

    # -- the Client's keyword arguments -------------------------------------------------------

    def client_kwargs(self) -> dict[str, Any]:
        """``sampling_callback=...`` and the rest, for ``mcp.Client(**...)``.

        A capability without a handler gets no callback, so the SDK does not advertise it.
        """
        h = self.handlers
        kwargs: dict[str, Any] = {"logging_callback": self._on_log, "log_level": h.log_level}
        if h.sampling is not None:
            kwargs["sampling_callback"] = self._sampling
        if h.elicitation is not None:
            kwargs["elicitation_callback"] = self._elicitation
        if h.roots is not None:
            kwargs["list_roots_callback"] = self._list_roots
        return kwargs

    # -- answering ----------------------------------------------------------------------------

    def _pick(self, field: str) -> tuple[Any, bool]:
        routed_handlers = _ROUTED.get() or self.side.routed
        if routed_handlers is not None and getattr(routed_handlers, field) is not None:
            return getattr(routed_handlers, field), True
        return getattr(self.side.handlers, field), False

    def _context(self, ctx: ClientRequestContext, routed: bool) -> HandlerContext:
        meta = dict(ctx.meta) if ctx.meta else None
        return HandlerContext(
            server=self.side.server,
            session=self.label,
            request_id=ctx.request_id,
            protocol_version=self.protocol_version,
            routed=routed,
            meta=meta,
        )

    async def _answer(
        self,
        kind: str,
        ctx: ClientRequestContext,
        call: Callable[[Any, HandlerContext], Any],
        accept: tuple[type, ...],
    ) -> Any:
        """Run the handler for ``kind`` within its timeout; any failure becomes ``ErrorData``."""
        handler, is_routed = self._pick(kind)
        if handler is None:
            return types.ErrorData(code=INVALID_REQUEST, message=f"{kind} is not supported")
        routed_timeout = (_ROUTED.get() or self.side.routed or NO_HANDLERS).timeout
        timeout = (
            routed_timeout if is_routed and routed_timeout else self.side.handlers.answer_timeout
        )
        hctx = self._context(ctx, is_routed)
        answering = ANSWERING.get()
        if answering is not None:
            answering[0] += 1
        try:
            with trio.move_on_after(timeout) as scope:
                result = await awaited(call(handler, hctx))
        except HandlerNotAsync as error:
            self.log.error(
                "server.handler_not_async", what=kind, returned=error.returned, routed=is_routed
            )
            return types.ErrorData(
                code=INTERNAL_ERROR,
                message=f"the client's {kind} handler is not async (declare it with async def)",
            )
        except Exception as error:
            self.log.warning(
                "server.handler_failed", what=kind, error=type(error).__name__, routed=is_routed
            )
            return types.ErrorData(
                code=INTERNAL_ERROR, message=f"the client's {kind} handler failed"
            )
        finally:
            if answering is not None:
                answering[0] -= 1
        if scope.cancelled_caught:
            self.log.warning("server.handler_timeout", what=kind, timeout=timeout)
            return types.ErrorData(
                code=INTERNAL_ERROR,
                message=f"the client's {kind} handler did not answer within {timeout:g}s",
            )
        if not isinstance(result, (*accept, types.ErrorData)):
            self.log.warning("server.handler_bad_answer", what=kind, got=type(result).__name__)
            return types.ErrorData(
                code=INTERNAL_ERROR, message=f"the client's {kind} handler gave an invalid answer"
            )
        return result

    async def _sampling(
        self, ctx: ClientRequestContext, params: types.CreateMessageRequestParams
    ) -> types.CreateMessageResult | types.CreateMessageResultWithTools | types.ErrorData:
        result: Any = await self._answer(
            "sampling",
            ctx,
            lambda handler, hctx: handler(hctx, params),
            (types.CreateMessageResult, types.CreateMessageResultWithTools),
        )
        return result  # type: ignore[no-any-return]

    async def _elicitation(
        self, ctx: ClientRequestContext, params: types.ElicitRequestParams
    ) -> types.ElicitResult | types.ErrorData:
        result: Any = await self._answer(
            "elicitation", ctx, lambda handler, hctx: handler(hctx, params), (types.ElicitResult,)
        )
        return result  # type: ignore[no-any-return]

    async def _list_roots(
        self, ctx: ClientRequestContext
    ) -> types.ListRootsResult | types.ErrorData:
        async def call(handler: Any, hctx: HandlerContext) -> types.ListRootsResult:
            roots = (
                handler if isinstance(handler, tuple) else _as_roots(await awaited(handler(hctx)))
            )
            return types.ListRootsResult(roots=list(roots))

        result: Any = await self._answer("roots", ctx, call, (types.ListRootsResult,))
        return result  # type: ignore[no-any-return]

    # -- server logs ------------------------------------------------------------------------

    async def _on_log(self, params: types.LoggingMessageNotificationParams) -> None:
        """A server log record: a structlog record, and the host's ``logging`` callback.

        Synchronous in effect (one checkpoint), rate-limited per session, so a flood costs
        the worker a counter increment per record past the limit.
        """
        self.receive_log(params)
        await trio.lowlevel.checkpoint()

    def receive_log(self, params: types.LoggingMessageNotificationParams) -> None:
        """Handle one server log record now (see :meth:`_on_log`)."""
        level: LogLevel = params.level if params.level in LOG_LEVELS else "info"
        minimum = self.side.handlers.log_level
        if minimum is not None and LOG_LEVELS.index(level) < LOG_LEVELS.index(minimum):
            return
        bucket = self._bucket
        dropped = bucket.dropped
        if not bucket.take():
            return
        if dropped:
            bucket.dropped = 0
            self.log.warning("server.log_dropped", count=dropped, rate=LOG_RATE)
        data = self._redacted(params.data)
        emit = getattr(self.log, _STDLIB_METHOD[level])
        emit("server.log", level=level, logger=params.logger, data=data)
        callback = self.side.handlers.logging
        if callback is None:
            return
        record = ServerLog(
            server=self.side.server,
            session=self.label,
            level=level,
            data=data,
            logger=params.logger,
        )
        try:
            callback(record)
        except Exception:
            self.log.warning("server.log_callback_failed", exc_info=True)

    def _redacted(self, data: Any) -> Any:
        if isinstance(data, str):
            return self.redact(data)
        try:
            text = json.dumps(data, ensure_ascii=False)
        except (TypeError, ValueError):
            return self.redact(repr(data))
        redacted = self.redact(text)
        return data if redacted == text else redacted

    # -- notifications ------------------------------------------------------------------------

    def on_message(self, message: IncomingMessage) -> None:
        """What the worker's message handler passes on: resource updates. While a listen
        stream is open the SDK delivers each update both ways; the stream's is the one
        reported, so one change is one :class:`ResourceUpdated`."""
        if isinstance(message, types.ResourceUpdatedNotification) and not self._listening:
            self._updated(str(message.params.uri))

    def _updated(self, uri: str) -> None:
        if self.side.on_updated is None:
            return
        event = ResourceUpdated(self.side.server, self.label, uri, trio.current_time())
        try:
            self.side.on_updated(event)
        except Exception:
            self.log.exception("server.hook_failed", what="resource_updated")

    # -- keeping the session's state ------------------------------------------------------------

    async def prepare(self, client: Client, timeout: float) -> None:
        """Apply the host's state to a session before it is reported ready: the log level and,
        on 2025-era sessions, the resource subscriptions. Each request is bounded by
        ``timeout``; a failure is logged, never fatal to the session."""
        self.protocol_version = client.protocol_version
        self.side._live[self] = None
        version = self.side.version
        if client.protocol_version in MODERN_PROTOCOL_VERSIONS:
            if not self.side.subscriptions:
                self._applied(version)
            return
        caps = client.server_capabilities
        level = self.side.handlers.log_level
        if level is not None and caps.logging is not None:
            request = types.SetLevelRequest(params=types.SetLevelRequestParams(level=level))
            await self._request(client, request, "logging/setLevel", timeout)
        self._level = level
        await self._sync_subscriptions(client, caps, timeout)
        self._applied(version)

    def start(self, nursery: trio.Nursery, client: Client, ready: Ready, timeout: float) -> None:
        """Follow the host's changes on a ready session until :meth:`stop` (see
        :meth:`prepare`): subscriptions, log level, and roots
        (``notifications/roots/list_changed``).

        The task doing so runs in ``nursery``, in the context current now, only while there
        is something to apply or a 2026-era ``listen`` stream to hold; then it ends, and the
        :class:`ServerSide`'s next change starts it again. A failure is logged and ends the
        following, never the session.
        """
        self._following = _Following(nursery, client, ready, timeout, contextvars.copy_context())
        self._spawn()

    def stop(self) -> None:
        """The session is over: follow no more changes."""
        self._following = None
        self._leave()

    def _leave(self) -> None:
        self.side._idle.pop(self, None)
        if self.side._live.pop(self, False) is None:
            self.side._progressed()

    def _applied(self, version: int) -> None:
        if version > self.applied:
            self.applied = version
            self.side._progressed()

    def _spawn(self) -> None:
        following = self._following
        if following is None or self._running:
            return
        try:
            following.context.run(following.nursery.start_soon, self._run, following)
        except RuntimeError:  # the session's nursery is closed: it is over
            self._following = None
            self._leave()
            return
        self._running = True

    async def _run(self, following: _Following) -> None:
        try:
            await self._follow(following.client, following.ready, following.timeout)
        except Exception as error:  # its text may quote the server: the type says enough
            self.log.warning("server.session_state_failed", error=type(error).__name__)
            self._following = None
            self._leave()
        finally:
            self._running = False
        if self._following is following:
            self.side._idle[self] = None

    async def _follow(self, client: Client, ready: Ready, timeout: float) -> None:
        """Apply the host's changes until there are none left to apply (or, in the 2026-07-28
        era, no subscription left to hold), then return. No checkpoint comes between the last
        check and the return, so no change can be missed before the session is idle again."""
        caps = ready.catalog.capabilities or types.ServerCapabilities()
        if ready.protocol_version in MODERN_PROTOCOL_VERSIONS:
            await self._follow_modern(client, caps, timeout)
            return
        while True:
            version = self.side.version
            await self._sync_subscriptions(client, caps, timeout)
            wanted = self.side.handlers.log_level
            if wanted != self._level and wanted is not None and caps.logging is not None:
                self._level = wanted
                params = types.SetLevelRequestParams(level=wanted)
                request = types.SetLevelRequest(params=params)
                await self._request(client, request, "logging/setLevel", timeout)
            if self.side.roots_version != self._roots_version and self.handlers.roots is not None:
                self._roots_version = self.side.roots_version
                with trio.move_on_after(timeout):
                    await client.session.send_notification(types.RootsListChangedNotification())
                self.log.debug("server.roots_changed")
            if self.side.version == version:
                self._applied(version)
                return

    async def _request(self, client: Client, request: Any, what: str, timeout: float) -> bool:
        with trio.move_on_after(timeout) as scope:
            try:
                await client.session.send_request(request, types.EmptyResult)
                return True
            except MCPError as error:
                self.log.warning("server.request_failed", what=what, error=error.error.message)
                return False
        if scope.cancelled_caught:
            self.log.warning("server.request_failed", what=what, error="timed out")
        return False

    async def _sync_subscriptions(
        self, client: Client, caps: types.ServerCapabilities, timeout: float
    ) -> None:
        desired = self.side.subscriptions
        if desired == self._applied_subscriptions:
            return
        if desired and not (caps.resources and caps.resources.subscribe):
            self.log.warning("server.subscribe_unsupported", uris=sorted(desired))
            self._applied_subscriptions = desired
            return
        applied = set(self._applied_subscriptions)
        for uri in sorted(desired - self._applied_subscriptions):
            request = types.SubscribeRequest(params=types.SubscribeRequestParams(uri=uri))
            if await self._request(client, request, "resources/subscribe", timeout):
                applied.add(uri)
        for uri in sorted(self._applied_subscriptions - desired):
            leave = types.UnsubscribeRequest(params=types.UnsubscribeRequestParams(uri=uri))
            await self._request(client, leave, "resources/unsubscribe", timeout)
            applied.discard(uri)
        self._applied_subscriptions = frozenset(applied)

    async def _follow_modern(
        self, client: Client, caps: types.ServerCapabilities, timeout: float
    ) -> None:
        """2026-07-28: one ``subscriptions/listen`` stream holds the subscriptions; reopened
        when they change, and closed when none is left."""
        while True:
            desired = self.side.subscriptions
            if not desired:
                self._applied(self.side.version)
                return
            self._held = False
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._listen, client, sorted(desired), timeout)
                while self.side.subscriptions == desired:
                    await self.side.wait_changed()
                    if self._held and self.side.subscriptions == desired:
                        self._applied(self.side.version)
                nursery.cancel_scope.cancel()

    async def _listen(self, client: Client, uris: list[str], timeout: float) -> None:
        delay = 1.0
        while True:
            try:
                with trio.CancelScope(deadline=trio.current_time() + timeout) as ack:
                    async with client.listen(resource_subscriptions=uris) as subscription:
                        ack.deadline = math.inf
                        delay = 1.0
                        self._listening = self._held = True
                        if self.side.subscriptions == frozenset(uris):
                            self._applied(self.side.version)
                        try:
                            async for event in subscription:
                                if isinstance(event, _ListenUpdated):
                                    self._updated(event.uri)
                        finally:
                            self._listening = self._held = False
            except ListenNotSupportedError:
                self.log.warning("server.subscribe_unsupported", uris=uris)
                self._held = True
                if self.side.subscriptions == frozenset(uris):
                    self._applied(self.side.version)
                return
            except (MCPError, SubscriptionLost, TimeoutError) as error:
                self.log.debug("server.listen_lost", error=type(error).__name__)
            await trio.sleep(delay)
            delay = min(delay * 2, 30.0)


@attrs.frozen
class _Following:
    """Where and how a session's following task runs (see :meth:`SessionCallbacks.start`)."""

    nursery: trio.Nursery
    client: Client
    ready: Ready
    timeout: float
    context: contextvars.Context


class UpdateFeed:
    """A bounded, never-blocking queue of :class:`ResourceUpdated` for one host subscriber."""

    def __init__(self, buffer: int) -> None:
        self.buffer = buffer
        self.queue: deque[ResourceUpdated] = deque()
        self.lost = 0
        self.closed = False
        self._wakeup = trio.Event()

    def push(self, event: ResourceUpdated) -> None:
        """Queue ``event``, discarding the oldest past ``buffer``."""
        if self.closed:
            return
        if len(self.queue) >= self.buffer:
            self.queue.popleft()
            self.lost += 1
        self.queue.append(event)
        self._wakeup.set()

    def close(self) -> None:
        """End iteration once the queue is drained."""
        self.closed = True
        self._wakeup.set()

    def __aiter__(self) -> UpdateFeed:
        return self

    async def __anext__(self) -> ResourceUpdated:
        while True:
            if self.queue:
                await trio.lowlevel.checkpoint()
                return self.queue.popleft()
            if self.closed:
                raise StopAsyncIteration
            self._wakeup = trio.Event()
            await self._wakeup.wait()


class HandlerNotAsync(Exception):
    """A handler returned a plain value: it was written as a sync function."""

    def __init__(self, returned: object) -> None:
        super().__init__(f"the handler returned {type(returned).__name__}, not an awaitable")
        self.returned = type(returned).__name__


async def awaited(value: Any) -> Any:
    """Await what a handler returned; a plain value means the handler is not async.

    Checked here, not when the handlers are given: a sync function that returns a coroutine
    (a lambda, a decorator's wrapper) is a valid handler, and only its result tells.
    """
    if not inspect.isawaitable(value):
        raise HandlerNotAsync(value)
    return await value


async def call_awaited(fn: Callable[..., Any], *args: Any) -> Any:
    """``await fn(*args)``, refusing a ``fn`` that is not async (see :func:`awaited`)."""
    return await awaited(fn(*args))
