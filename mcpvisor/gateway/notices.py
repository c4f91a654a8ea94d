"""Resource subscriptions and server log records, relayed to the gateway's clients.

Subscriptions are held per client connection and counted per ``(server, uri)``: the first
holder subscribes downstream (the supervisor keeps it across restarts), the last one to leave
(unsubscribe, end of its connection or of its listen stream) unsubscribes. An update reaches
the handshake-era connections that hold its URI as ``notifications/resources/updated`` and the
2026-07-28 listen streams that asked for it.

A server log record that arrives while a gateway request to that server runs (downstream
streamable HTTP or 2026-07-28 sessions deliver it in that request's context) goes to the
client that made the request, on that request's stream, ahead of its result. Any other record
(a 2025-era stdio session's, or one between requests) goes to every handshake-era connection,
filtered by the level that connection set with ``logging/setLevel``; 2026-07-28 clients
receive logs only within their own requests, as that era requires.
"""

from __future__ import annotations

import itertools
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager, suppress
from contextvars import ContextVar
from functools import partial
from typing import TYPE_CHECKING, Any, Final

import attrs
import mcp_types as types
import structlog
import trio
from mcp.server.context import ServerRequestContext
from mcp.server.session import ServerSession
from mcp.server.subscriptions import ResourceUpdated as ListenUpdated
from mcp.shared.exceptions import MCPError
from mcp_types.version import MODERN_PROTOCOL_VERSIONS

from mcpvisor.gateway.view import resource_server
from mcpvisor.specs import MCPVisorError, qualify
from mcpvisor.specs.handlers import LOG_LEVELS, LogLevel, ServerLog
from mcpvisor.supervisor import UnknownServerError
from mcpvisor.workers.callbacks import ResourceUpdated

if TYPE_CHECKING:
    from mcpvisor.gateway.server import Gateway

log = structlog.get_logger("mcpvisor")

LOG_BUFFER: Final = 1024
"""Server log records waiting for the gateway's clients; past that, records are dropped and
counted (a client that reads slowly must not hold a downstream server up)."""

_SEND_TIMEOUT: Final = 5.0
"""How long one connection may take to accept a notification before it is skipped."""

_STATE_KEY: Final = "mcpvisor.notices"

Key = tuple[str, str]
"""``(server, uri)``: one downstream subscription."""


class _Holder:
    """What one client connection (or one listen stream) holds and wants."""

    def __init__(self, ident: int, session: ServerSession | None) -> None:
        self.ident = ident
        self.session = session
        self.keys: set[Key] = set()
        self.level: LogLevel | None = None


def _connection(session: ServerSession) -> Any:
    # The SDK gives a request's ServerSession no public handle on its connection.
    return getattr(session, "_connection", None)


class _RequestLogs:
    """The log records of one gateway request, sent on its stream in arrival order.

    Queued at once (the downstream's callback must not wait for the client) and drained
    before the request's result goes out, as the progress relay does.
    """

    def __init__(
        self, ctx: ServerRequestContext[Any], server: str, levels: frozenset[LogLevel]
    ) -> None:
        self.ctx = ctx
        self.server = server
        self.levels = levels
        self._send, self._receive = trio.open_memory_channel[ServerLog](LOG_BUFFER)

    def push(self, record: ServerLog) -> None:
        if record.level not in self.levels:
            return
        # Advisory, as progress is: a flood must not stall the call.
        with suppress(trio.WouldBlock, trio.ClosedResourceError):
            self._send.send_nowait(record)

    def close(self) -> None:
        self._send.close()

    async def forward(self, logger_name: Callable[[ServerLog], str | None]) -> None:
        async with self._receive:
            async for record in self._receive:
                with suppress(Exception):
                    await self.ctx.session.send_notification(
                        _notification(record, logger_name(record)),
                        related_request_id=self.ctx.request_id,
                    )


@attrs.frozen
class _Sink:
    """Where the log records of a call running outside its request's task go (a 2026-07-28
    client's parked call: its rounds send them)."""

    server: str
    push: Callable[[ServerLog], None]


_CURRENT: ContextVar[_RequestLogs | _Sink | None] = ContextVar(
    "mcpvisor_gateway_request", default=None
)


def _from(minimum: LogLevel | None) -> frozenset[LogLevel]:
    """``minimum`` and every more severe level; every level for None."""
    return frozenset(LOG_LEVELS[LOG_LEVELS.index(minimum) :] if minimum else LOG_LEVELS)


class Notices:
    """Relays one gateway's resource updates and server logs (see the module docstring)."""

    def __init__(self, gateway: Gateway) -> None:
        self._gateway = gateway
        self._holders: dict[Key, set[int]] = {}
        self._by_ident: dict[int, _Holder] = {}
        self._idents = itertools.count(1)
        self._logs_send, self._logs_receive = trio.open_memory_channel[ServerLog](LOG_BUFFER)
        self.dropped_logs = 0

    # ---- the Server's handlers ------------------------------------------------------------

    def register(self) -> None:
        """Serve ``resources/subscribe`` and ``resources/unsubscribe`` on the gateway's
        ``Server`` (which then advertises ``resources.subscribe``)."""
        server = self._gateway.server
        server.add_request_handler(
            "resources/subscribe", types.SubscribeRequestParams, self._subscribe
        )
        server.add_request_handler(
            "resources/unsubscribe", types.UnsubscribeRequestParams, self._unsubscribe
        )

    def _route(self, uri: str) -> str | None:
        gateway = self._gateway
        return resource_server(gateway.view, uri, gateway._servers)

    def _connection_holder(self, session: ServerSession) -> _Holder:
        """The holder for ``session``'s connection, created (and tied to its end) on first use."""
        connection = _connection(session)
        state = getattr(connection, "state", None)
        holder = state.get(_STATE_KEY) if isinstance(state, dict) else None
        if isinstance(holder, _Holder):
            return holder
        holder = self._new_holder(session)
        if isinstance(state, dict):
            state[_STATE_KEY] = holder
        stack = getattr(connection, "exit_stack", None)
        if stack is not None:
            stack.push_async_callback(self._release_all, holder)
        return holder

    def _new_holder(self, session: ServerSession | None) -> _Holder:
        holder = _Holder(next(self._idents), session)
        self._by_ident[holder.ident] = holder
        return holder

    async def _subscribe(
        self, ctx: ServerRequestContext[Any], params: types.SubscribeRequestParams
    ) -> types.EmptyResult:
        uri = str(params.uri)
        server = self._route(uri)
        if server is None:
            raise MCPError(types.INVALID_PARAMS, f"Unknown resource: {uri}")
        holder = self._connection_holder(ctx.session)
        await self._hold(holder, (server, uri))
        return types.EmptyResult()

    async def _unsubscribe(
        self, ctx: ServerRequestContext[Any], params: types.UnsubscribeRequestParams
    ) -> types.EmptyResult:
        uri = str(params.uri)
        holder = self._connection_holder(ctx.session)
        for key in [k for k in holder.keys if k[1] == uri]:
            await self._release(holder, key)
        return types.EmptyResult()

    async def listen(
        self, ctx: ServerRequestContext[Any], params: types.SubscriptionsListenRequestParams
    ) -> types.SubscriptionsListenResult:
        """Serve a 2026-07-28 ``subscriptions/listen`` stream, holding its resource URIs
        downstream while it is open. A URI no server offers is honoured and never fires."""
        holder = self._new_holder(None)
        try:
            for uri in params.notifications.resource_subscriptions or ():
                server = self._route(uri)
                if server is not None:
                    with suppress(MCPError):
                        await self._hold(holder, (server, uri))
            return await self._gateway._listen(ctx, params)
        finally:
            with trio.CancelScope(shield=True):
                await self._release_all(holder)

    def set_level(self, session: ServerSession, level: LogLevel) -> None:
        """The least severe log level ``session``'s connection wants (``logging/setLevel``)."""
        self._connection_holder(session).level = level

    # ---- holding downstream subscriptions ---------------------------------------------------

    async def _hold(self, holder: _Holder, key: Key) -> None:
        if key in holder.keys:
            return
        holders = self._holders.get(key)
        if not holders:
            server, uri = key
            try:
                await self._gateway.client.subscribe_resource(server, uri)
            except MCPVisorError as error:
                raise MCPError(types.INVALID_PARAMS, str(error)) from error
            holders = self._holders.setdefault(key, set())
        holders.add(holder.ident)
        holder.keys.add(key)

    async def _release(self, holder: _Holder, key: Key) -> None:
        holder.keys.discard(key)
        holders = self._holders.get(key)
        if holders is None:
            return
        holders.discard(holder.ident)
        if holders:
            return
        del self._holders[key]
        server, uri = key
        with suppress(UnknownServerError):
            await self._gateway.client.unsubscribe_resource(server, uri)

    async def _release_all(self, holder: _Holder) -> None:
        for key in list(holder.keys):
            await self._release(holder, key)
        self._by_ident.pop(holder.ident, None)

    def held(self) -> frozenset[Key]:
        """The downstream subscriptions held for the gateway's clients right now."""
        return frozenset(self._holders)

    # ---- following the supervisor -----------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Relay resource updates and unclaimed log records until cancelled."""
        async with (
            self._gateway.client.resource_updates() as updates,
            trio.open_nursery() as nursery,
        ):
            nursery.start_soon(self._relay_logs)
            task_status.started()
            async for event in updates:
                await self._updated(event)

    async def _updated(self, event: ResourceUpdated) -> None:
        holders = self._holders.get((event.server, event.uri), set())
        sessions = [
            h.session
            for ident in holders
            if (h := self._by_ident.get(ident)) is not None and h.session is not None
        ]
        if sessions:
            await _each(sessions, lambda s: s.send_resource_updated(event.uri))
        if any(self._by_ident[i].session is None for i in holders if i in self._by_ident):
            await self._gateway._bus.publish(ListenUpdated(uri=event.uri))

    # ---- log records ------------------------------------------------------------------------

    @contextmanager
    def request_logs(
        self, ctx: ServerRequestContext[Any], server: str, nursery: trio.Nursery
    ) -> Iterator[None]:
        """Within the block, ``server``'s log records that arrive in this request's context
        go to its client, on its stream; they are all sent before the block's nursery ends."""
        relay = _RequestLogs(ctx, server, self._request_levels(ctx))
        nursery.start_soon(relay.forward, self._logger_name)
        token = _CURRENT.set(relay)
        try:
            yield
        finally:
            _CURRENT.reset(token)
            relay.close()

    @contextmanager
    def log_sink(self, server: str, push: Callable[[ServerLog], None]) -> Iterator[None]:
        """Within the block, ``server``'s log records that arrive in this context go to
        ``push``; :meth:`send_in` later sends each on the request it belongs to."""
        token = _CURRENT.set(_Sink(server, push))
        try:
            yield
        finally:
            _CURRENT.reset(token)

    async def send_in(self, ctx: ServerRequestContext[Any], record: ServerLog) -> None:
        """Send ``record`` on ``ctx``'s request stream, if its client takes that level."""
        if record.level not in self._request_levels(ctx):
            return
        with suppress(Exception):
            await ctx.session.send_notification(
                _notification(record, self._logger_name(record)),
                related_request_id=ctx.request_id,
            )

    def _request_levels(self, ctx: ServerRequestContext[Any]) -> frozenset[LogLevel]:
        """The levels ``ctx``'s client takes on this request's stream: from its connection's
        ``logging/setLevel`` (all without one), or on 2026-07-28 from the request's own
        opt-in (none without one, as that era requires)."""
        if ctx.protocol_version not in MODERN_PROTOCOL_VERSIONS:
            return _from(self._connection_holder(ctx.session).level)
        requested = (ctx.meta or {}).get(types.LOG_LEVEL_META_KEY)
        level = next((level for level in LOG_LEVELS if level == requested), None)
        return frozenset() if level is None else _from(level)

    def server_log(self, record: ServerLog) -> None:
        """A downstream server's log record (from the supervisor's logging handler)."""
        current = _CURRENT.get()
        if current is not None and current.server == record.server:
            current.push(record)
            return
        try:
            self._logs_send.send_nowait(record)
        except trio.WouldBlock:
            self.dropped_logs += 1

    async def _relay_logs(self) -> None:
        async for record in self._logs_receive:
            if self.dropped_logs:
                log.warning("gateway.logs_dropped", count=self.dropped_logs)
                self.dropped_logs = 0
            sessions = []
            for session in list(self._gateway._sessions.values()):
                holder = self._connection_holder(session)
                if record.level in _from(holder.level):
                    sessions.append(session)
            if not sessions:
                continue
            await _each(sessions, partial(_send_log, record, self._logger_name(record)))

    def _logger_name(self, record: ServerLog) -> str | None:
        """The record's logger, prefixed ``server__`` when the gateway's names are."""
        if not self._gateway.namespaced:
            return record.logger
        return record.server if record.logger is None else qualify(record.server, record.logger)


async def _send_log(record: ServerLog, logger: str | None, session: ServerSession) -> None:
    await session.send_notification(_notification(record, logger))


def _notification(record: ServerLog, logger: str | None) -> types.LoggingMessageNotification:
    params = types.LoggingMessageNotificationParams(
        level=record.level, data=record.data, logger=logger
    )
    return types.LoggingMessageNotification(params=params)


async def _each(
    sessions: list[ServerSession], send: Callable[[ServerSession], Awaitable[None]]
) -> None:
    """``send`` to every session at once, each within :data:`_SEND_TIMEOUT`; failures skip."""

    async def one(session: ServerSession) -> None:
        try:
            with trio.fail_after(_SEND_TIMEOUT):
                await send(session)
        except Exception:
            log.debug("gateway.notice_failed", exc_info=True)

    async with trio.open_nursery() as nursery:
        for session in sessions:
            nursery.start_soon(one, session)
