"""The servers' questions (sampling, elicitation, roots) relayed to the gateway's clients.

A downstream server may ask its client to sample a model, to ask the user, or for its roots.
Behind the gateway, that client is the gateway's own client, and only one of them may hear a
question: never one client's question put to another client's user.

- **Routed** (the downstream session tells which request asked: streamable HTTP, or any
  2026-07-28 session): the question goes to the gateway client whose request is running,
  on that request's own stream. A 2025-era client gets a server-to-client request; a
  2026-07-28 client gets the question inside an ``InputRequiredResult`` and retries with the
  answers, while the downstream call waits, parked, in a task the gateway owns (see
  :class:`_Exchange`).
- **Unrouted** (a 2025-era stdio, SSE or in-process downstream session, or a question outside
  any call): it reaches :meth:`Asking.unrouted` through the supervisor-level
  :class:`~mcpvisor.gateway.relay.Relay`. The gateway asks the one client connection with a
  request to that server in flight, if there is exactly one; a gateway served over stdio has
  a single client, which is asked (after it connects) even with nothing in flight. Otherwise
  the server gets a JSON-RPC error saying the gateway cannot tell which client asked.

A client is only asked what it declared it can answer (its ``sampling``, ``elicitation`` or
``roots`` capability); anything else is answered with an error naming what is missing.
"""

from __future__ import annotations

import math
import secrets
from collections import deque
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager, suppress
from typing import TYPE_CHECKING, Any, Final, Literal, TypeAlias, cast

import mcp_types as types
import structlog
import trio
from mcp.server.context import ServerRequestContext
from mcp.server.session import ServerSession
from mcp.shared.exceptions import MCPError
from mcp.shared.message import ServerMessageMetadata
from mcp_types.version import MODERN_PROTOCOL_VERSIONS
from pydantic import ValidationError

from mcpvisor.gateway import source
from mcpvisor.specs.handlers import (
    DEFAULT_ANSWER_TIMEOUT,
    ClientHandlers,
    HandlerContext,
    ServerLog,
)
from mcpvisor.supervisor import UnknownServerError

if TYPE_CHECKING:
    from mcpvisor.gateway.server import Gateway

log = structlog.get_logger("mcpvisor")

Kind: TypeAlias = Literal["sampling", "elicitation", "roots"]

Progress: TypeAlias = Callable[[float, float | None, str | None], Awaitable[None]]
Call: TypeAlias = Callable[[ClientHandlers, Progress | None], Awaitable[Any]]
"""One downstream request, given the routed handlers and a progress callback (or None)."""

_PROGRESS_BUFFER: Final = 256
"""Progress notifications a parked call keeps for its next round; older ones are dropped."""

_GATHER_PASSES: Final = 3
"""Scheduler passes a round waits for more questions after the first: the SDK's client asks
a round's questions from concurrent tasks, which arrive within a pass or two."""


def _declared(session: ServerSession, kind: Kind) -> bool:
    caps = session.client_capabilities
    return caps is not None and getattr(caps, kind) is not None


def _missing(kind: Kind) -> types.ErrorData:
    return types.ErrorData(
        code=types.INVALID_REQUEST,
        message=f"the gateway's client did not declare the {kind} capability",
    )


def _request(kind: Kind, params: Any) -> tuple[Any, type[types.Result]]:
    """The server-to-client request for ``kind`` with ``params`` unchanged, and its result type."""
    if kind == "sampling":
        tools = getattr(params, "tools", None)
        result: type[types.Result] = (
            types.CreateMessageResultWithTools if tools else types.CreateMessageResult
        )
        return types.CreateMessageRequest(params=params), result
    if kind == "elicitation":
        return types.ElicitRequest(params=params), types.ElicitResult
    return types.ListRootsRequest(params=params), types.ListRootsResult


_ANSWERS: Final[dict[str, tuple[type[types.Result], ...]]] = {
    "sampling": (types.CreateMessageResult, types.CreateMessageResultWithTools),
    "elicitation": (types.ElicitResult,),
    "roots": (types.ListRootsResult,),
}


def _roots_of(answer: Any) -> list[types.Root]:
    """A roots handler's return value from the client's answer, or a raised error."""
    if isinstance(answer, types.ListRootsResult):
        return list(answer.roots)
    error = answer if isinstance(answer, types.ErrorData) else None
    raise MCPError(
        types.INTERNAL_ERROR if error is None else error.code,
        "the gateway's client gave no roots" if error is None else error.message,
    )


def _connection(session: ServerSession) -> object:
    """The connection a request arrived on (ServerSession is built per request)."""
    return getattr(session, "_connection", session)


class _Asker:
    """Someone the gateway may put a server's question to."""

    connection: object

    async def ask(self, kind: Kind, params: Any, key: str | int | None) -> Any:
        raise NotImplementedError


class _Direct(_Asker):
    """A 2025-era client, asked with a server-to-client request: on the stream of its request
    ``related`` (so HTTP puts it on that POST's response), or on its standalone channel."""

    def __init__(self, session: ServerSession, related: types.RequestId | None) -> None:
        self.session = session
        self.related = related
        self.connection = _connection(session)

    async def ask(self, kind: Kind, params: Any, key: str | int | None) -> Any:
        if not _declared(self.session, kind):
            return _missing(kind)
        request, result_type = _request(kind, params)
        metadata = (
            None if self.related is None else ServerMessageMetadata(related_request_id=self.related)
        )
        try:
            # Cancelled when the server cancels its question: the SDK then tells the client.
            return await self.session.send_request(request, result_type, metadata=metadata)
        except MCPError as error:
            return error.error
        except ValidationError:
            return types.ErrorData(
                code=types.INTERNAL_ERROR,
                message=f"the gateway's client gave an invalid {kind} answer",
            )


class _Question:
    def __init__(self, kind: Kind, request: Any) -> None:
        self.kind = kind
        self.request = request
        self.answer: Any = None
        self.answered = trio.Event()


class _Exchange(_Asker):
    """One 2026-07-28 client request whose downstream call runs in the gateway's task.

    The call's questions are collected and handed to whichever round (the client's first
    request, then each retry carrying ``request_state``) is waiting; between rounds the
    call is parked. ``park`` is the task's cancel scope: its deadline is set while the
    client holds the questions, so a client that never retries frees the call, and it is
    cancelled outright when a round is cancelled by its client.
    """

    def __init__(
        self, token: str, method: str, name: str, server: str, ctx: ServerRequestContext[Any]
    ) -> None:
        self.token = token
        self.method = method
        self.name = name
        self.server = server
        self.session = ctx.session
        self.connection = _connection(ctx.session)
        self.pending: dict[str, _Question] = {}
        self.outstanding: dict[str, _Question] = {}
        self.progress: deque[tuple[float, float | None, str | None]] = deque(
            maxlen=_PROGRESS_BUFFER
        )
        self.logs: deque[ServerLog] = deque(maxlen=_PROGRESS_BUFFER)
        self.prefilled: dict[str, Any] = {}
        self.done = False
        self.result: Any = None
        self.error: BaseException | None = None
        self.collected = trio.Event()
        self.active = False
        self.park = trio.CancelScope()
        self._changed = trio.Event()

    def changed(self) -> None:
        self._changed.set()
        self._changed = trio.Event()

    async def wait_changed(self) -> None:
        await self._changed.wait()

    def finish(self, result: Any = None, error: BaseException | None = None) -> None:
        if not self.done:
            self.done, self.result, self.error = True, result, error
            self.changed()

    def on_log(self, record: ServerLog) -> None:
        self.logs.append(record)
        self.changed()

    async def on_progress(self, progress: float, total: float | None, message: str | None) -> None:
        self.progress.append((progress, total, message))
        self.changed()
        await trio.lowlevel.checkpoint()

    async def ask(self, kind: Kind, params: Any, key: str | int | None) -> Any:
        if not _declared(self.session, kind):
            return _missing(kind)
        request, _ = _request(kind, params)
        name = str(key) if key is not None else ""
        if name and name in self.prefilled:
            # The client answered before it was asked (a stateless first request carrying
            # input_responses): the answer is taken as given, and anything else it sent is
            # ignored.
            return _checked(name, kind, self.prefilled.pop(name))
        if not name or name in self.pending or name in self.outstanding:
            name = f"{kind}-{secrets.token_hex(4)}"
        question = self.pending[name] = _Question(kind, request)
        self.changed()
        try:
            await question.answered.wait()
        finally:
            self.pending.pop(name, None)
            self.outstanding.pop(name, None)
        return question.answer

    def answer(self, responses: dict[str, Any] | None) -> None:
        """Hand the client's answers to the questions it was given; a missing one is refused."""
        responses = responses or {}
        for key, question in list(self.outstanding.items()):
            question.answer = _checked(key, question.kind, responses.get(key))
            question.answered.set()
        self.outstanding.clear()


def _checked(key: str, kind: Kind, response: Any) -> Any:
    """The client's ``response`` to question ``key`` if it answers a ``kind`` question, else
    the error the server gets instead."""
    if response is None:
        return types.ErrorData(
            code=types.INVALID_REQUEST, message=f"the gateway's client sent no answer for {key!r}"
        )
    if isinstance(response, _ANSWERS[kind]):
        return response
    return types.ErrorData(
        code=types.INVALID_PARAMS, message=f"the answer for {key!r} is not a {kind} result"
    )


class Asking:
    """Relays one gateway's questions: routed with its requests, or by the routing rule.

    :meth:`register` installs the notification handlers it needs on the gateway's server;
    :meth:`run` hosts the parked 2026-07-28 calls and must run in the gateway's nursery.
    """

    def __init__(self, gateway: Gateway) -> None:
        self._gateway = gateway
        self._inflight: dict[str, list[_Asker]] = {}
        self._streams: dict[object, ServerSession] = {}
        self._stream_joined = trio.Event()
        self._seen_requests = False
        self._parked: dict[str, _Exchange] = {}
        self._nursery: trio.Nursery | None = None
        self._started = trio.Event()

    # ---- setup ----------------------------------------------------------------------------

    def register(self) -> None:
        """Follow client connections and their roots changes on the gateway's server."""
        server = self._gateway.server
        previous = server.get_notification_handler("notifications/initialized")

        async def initialized(ctx: ServerRequestContext[Any], params: Any) -> None:
            self._joined(ctx)
            if previous is not None:
                await previous.handler(ctx, params)

        server.add_notification_handler(
            "notifications/initialized", types.NotificationParams, initialized
        )
        server.add_notification_handler(
            "notifications/roots/list_changed", types.NotificationParams, self._roots_changed
        )

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Host parked calls until cancelled; every one ends with it."""
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            self._started.set()
            task_status.started()
            try:
                await trio.sleep_forever()
            finally:
                self._nursery = None

    def _joined(self, ctx: ServerRequestContext[Any]) -> None:
        """A handshake-era connection is ready. One that is not HTTP (no HTTP request under
        it) is a stream's single client: stdio, or an in-memory pair."""
        if ctx.request is not None:
            # An HTTP client: no longer worth waiting for a stream's client.
            self._requested()
            return
        key = _connection(ctx.session)
        self._streams[key] = ctx.session
        self._stream_joined.set()
        stack = getattr(key, "exit_stack", None)
        if stack is not None:
            stack.callback(self._streams.pop, key, None)

    def _requested(self) -> None:
        """A client made a request: a question outside calls need not wait for one."""
        self._seen_requests = True
        self._stream_joined.set()

    def _serves_http(self) -> bool:
        try:
            self._gateway.server.session_manager  # noqa: B018 - raises until HTTP is served
        except RuntimeError:
            return False
        return True

    def timeout(self, server: str) -> float:
        """How long a question to ``server``'s client (and a parked call) may wait."""
        relay = self._gateway.relay
        return DEFAULT_ANSWER_TIMEOUT if relay is None else relay.answer_timeout(server)

    # ---- routed: with a gateway request -----------------------------------------------------

    def handlers_for(self, ctx: ServerRequestContext[Any]) -> ClientHandlers | None:
        """The routed handlers for the downstream request serving ``ctx``, or None.

        For a 2025-era client: each question goes to it on ``ctx``'s stream. A 2026-07-28
        client cannot be sent requests: its calls go through :meth:`parked` instead.
        """
        if ctx.protocol_version in MODERN_PROTOCOL_VERSIONS:
            return None
        return self._handlers(_Direct(ctx.session, ctx.request_id))

    @staticmethod
    def _handlers(asker: _Asker) -> ClientHandlers:
        async def sampling(hctx: HandlerContext, params: Any) -> Any:
            return await asker.ask("sampling", params, hctx.request_id)

        async def elicitation(hctx: HandlerContext, params: Any) -> Any:
            return await asker.ask("elicitation", params, hctx.request_id)

        async def roots(hctx: HandlerContext) -> list[types.Root]:
            return _roots_of(await asker.ask("roots", None, hctx.request_id))

        return ClientHandlers(sampling=sampling, elicitation=elicitation, roots=roots)

    @contextmanager
    def serving(self, ctx: ServerRequestContext[Any], server: str) -> Iterator[ClientHandlers]:
        """A 2025-era client's request to ``server`` in flight, for the block: its handlers,
        and a candidate for the unrouted questions ``server`` asks meanwhile."""
        self._requested()
        asker = _Direct(ctx.session, ctx.request_id)
        with self._in_flight(server, asker):
            yield self._handlers(asker)

    @contextmanager
    def _in_flight(self, server: str, asker: _Asker) -> Iterator[None]:
        self._inflight.setdefault(server, []).append(asker)
        try:
            yield
        finally:
            askers = self._inflight.get(server, [])
            if asker in askers:
                askers.remove(asker)
            if not askers:
                self._inflight.pop(server, None)

    # ---- routed: 2026-07-28 clients, input-required rounds --------------------------------

    def parks(self, ctx: ServerRequestContext[Any]) -> bool:
        """Whether requests of ``ctx`` go through :meth:`parked` (its client speaks 2026)."""
        return ctx.protocol_version in MODERN_PROTOCOL_VERSIONS

    async def parked(
        self,
        ctx: ServerRequestContext[Any],
        server: str,
        method: str,
        name: str,
        params: types.InputResponseRequestParams,
        call: Call,
        *,
        progress: bool = False,
    ) -> Any:
        """One round of a 2026-07-28 client's request: the downstream result, or an
        ``InputRequiredResult`` holding the server's questions.

        A first request starts ``call`` in the gateway's task; a retry (``request_state``
        set) resumes the call it names with the client's ``input_responses``. Errors of
        the downstream call are raised here, as if the call ran in this task.
        """
        self._requested()
        if params.request_state is not None:
            exchange = self._resume(params.request_state, method, name)
            exchange.park.deadline = math.inf
            exchange.session = ctx.session
            exchange.answer(params.input_responses)
        else:
            exchange = _Exchange(secrets.token_urlsafe(24), method, name, server, ctx)
            exchange.prefilled = dict(params.input_responses or {})
            await self._started.wait()
            nursery = self._nursery
            if nursery is None:
                raise MCPError(types.INTERNAL_ERROR, "the gateway is shutting down")
            self._parked[exchange.token] = exchange
            nursery.start_soon(self._drive, exchange, call, progress)
        return await self._round(exchange, ctx)

    def _resume(self, token: str, method: str, name: str) -> _Exchange:
        exchange = self._parked.get(token)
        if exchange is None or exchange.collected.is_set():
            raise MCPError(
                types.INVALID_PARAMS,
                "request_state is unknown or expired: the call it continued was given up; "
                "call again without it",
            )
        if exchange.active:
            raise MCPError(
                types.INVALID_REQUEST, "request_state is being continued by another request"
            )
        if (exchange.method, exchange.name) != (method, name):
            raise MCPError(
                types.INVALID_PARAMS,
                f"request_state belongs to {exchange.method} {exchange.name!r}, "
                f"not {method} {name!r}",
            )
        return exchange

    async def _drive(self, exchange: _Exchange, call: Call, progress: bool) -> None:
        """The downstream call of ``exchange``, then its result kept until a round takes it."""
        server = exchange.server
        with exchange.park:
            with (
                self._in_flight(server, exchange),
                self._gateway.notices.log_sink(server, exchange.on_log),
            ):
                try:
                    result = await call(
                        self._handlers(exchange), exchange.on_progress if progress else None
                    )
                except Exception as error:
                    exchange.finish(error=error)
                else:
                    exchange.finish(result=result)
            await exchange.collected.wait()
        if exchange.park.cancelled_caught:
            log.info("gateway.parked_call_expired", server=server, name=exchange.name)
        exchange.finish(
            error=MCPError(types.INTERNAL_ERROR, "the call was given up: its client went away")
        )
        self._parked.pop(exchange.token, None)

    async def _round(self, exchange: _Exchange, ctx: ServerRequestContext[Any]) -> Any:
        parked = False
        exchange.active = True
        try:
            while True:
                while exchange.progress or exchange.logs:
                    if exchange.logs:
                        await self._gateway.notices.send_in(ctx, exchange.logs.popleft())
                    else:
                        await ctx.session.report_progress(*exchange.progress.popleft())
                if exchange.done and not exchange.progress and not exchange.logs:
                    exchange.collected.set()
                    if exchange.error is not None:
                        raise exchange.error
                    return exchange.result
                if exchange.pending:
                    for _ in range(_GATHER_PASSES):
                        await trio.lowlevel.checkpoint()
                    asked = dict(exchange.pending)
                    exchange.outstanding.update(asked)
                    exchange.pending.clear()
                    exchange.park.deadline = trio.current_time() + self.timeout(exchange.server)
                    parked = True
                    # Each round's state is new and good once: a replayed one is refused.
                    self._parked.pop(exchange.token, None)
                    exchange.token = secrets.token_urlsafe(24)
                    self._parked[exchange.token] = exchange
                    return types.InputRequiredResult(
                        input_requests={k: q.request for k, q in asked.items()},
                        request_state=exchange.token,
                    )
                await exchange.wait_changed()
        finally:
            exchange.active = False
            if not parked and not exchange.collected.is_set():
                # This round was cancelled (its client cancelled): so is the downstream call.
                exchange.park.cancel()

    # ---- unrouted: the routing rule ---------------------------------------------------------

    async def unrouted(self, ctx: HandlerContext, kind: str, params: Any) -> Any:
        """Answer a question no gateway request claimed (see the module's routing rule)."""
        if kind not in _ANSWERS:
            return types.ErrorData(code=types.INVALID_REQUEST, message=f"{kind} is not relayed")
        asker = await self._choose(ctx.server)
        if isinstance(asker, types.ErrorData):
            return asker
        return await asker.ask(cast(Kind, kind), params, ctx.request_id)

    async def roots(self, ctx: HandlerContext) -> list[types.Root]:
        """The roots a downstream server may use: its client's (``roots/list`` to it)."""
        return _roots_of(await self.unrouted(ctx, "roots", None))

    async def _choose(self, server: str) -> _Asker | types.ErrorData:
        askers = self._inflight.get(server, [])
        connections = {id(a.connection) for a in askers}
        if len(connections) == 1:
            return askers[-1]
        if len(connections) > 1:
            return types.ErrorData(
                code=types.INVALID_REQUEST,
                message=(
                    f"the gateway cannot tell which of its {len(connections)} clients "
                    f"{server!r} is asking: serve it over streamable HTTP or the 2026-07-28 "
                    "protocol, or run one gateway per client"
                ),
            )
        if not self._streams and not self._seen_requests and not self._serves_http():
            # A stdio gateway's client may not have connected yet.
            with trio.move_on_after(self.timeout(server)):
                await self._stream_joined.wait()
        if len(self._streams) == 1:
            (session,) = self._streams.values()
            return _Direct(session, None)
        return types.ErrorData(
            code=types.INVALID_REQUEST,
            message=(
                f"no client of the gateway has a request to {server!r} in flight, so the "
                "gateway cannot tell whom to ask"
            ),
        )

    # ---- roots changes --------------------------------------------------------------------

    async def _roots_changed(self, ctx: ServerRequestContext[Any], params: Any) -> None:
        """The client's roots changed: tell the servers whose roots are the client's."""
        client, relay = self._gateway.client, self._gateway.relay
        if relay is None:
            return
        for server in source.configured(client):
            if relay.relays_roots(server):
                with suppress(UnknownServerError):  # removed meanwhile
                    await client.set_roots(_ClientRoots(self), server=server)


class _ClientRoots:
    """A roots handler asking the gateway's client; a new one per change, so the supervisor
    sees a change and notifies live sessions."""

    def __init__(self, asking: Asking) -> None:
        self.asking = asking

    async def __call__(self, ctx: HandlerContext) -> list[types.Root]:
        return await self.asking.roots(ctx)
