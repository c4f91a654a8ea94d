"""The gateway over streamable HTTP: ``/mcp`` plus health, readiness, status and metrics.

One Starlette app served by hypercorn's Trio worker. ``/healthz`` says the process is up;
``/readyz`` answers 503 unless every required server is ACTIVE; ``/status`` is the
supervisor's status snapshot as JSON (no secrets: the snapshot holds none). ``/metrics`` is
served by an ASGI app the host supplies (an object, not a function, which Starlette would take
for a request handler; the observability extra provides one).

Access: a bearer token, when set, is required on every path but ``/healthz`` and ``/readyz``
(probes carry no credentials) and compared in constant time. The SDK's DNS-rebinding
protection checks ``Host`` and ``Origin`` on ``/mcp``; request bodies are size-limited.

Resumability: SSE streams open with a priming event and a retry interval, and a client that
lost a stream resumes it with ``Last-Event-ID`` from the recent events the gateway keeps
(:class:`SessionEventStore`), only ever its own session's.
"""

from __future__ import annotations

import hmac
import ipaddress
import secrets
from collections import deque
from collections.abc import Sequence
from contextvars import ContextVar
from typing import Any, NamedTuple

import attrs
import trio
from mcp.server.streamable_http import (
    MCP_SESSION_ID_HEADER,
    EventCallback,
    EventMessage,
    EventStore,
)
from mcp.server.transport_security import DEFAULT_MAX_REQUEST_BODY_SIZE, TransportSecuritySettings
from mcp_types import JSONRPCMessage
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mcpvisor.gateway.server import Gateway
from mcpvisor.specs import UsageError
from mcpvisor.supervisor import ServerState

_OPEN_PATHS = frozenset({"/healthz", "/readyz"})
_LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")
_SSE_RETRY_MS = 1000
"""How long a client waits before reconnecting a dropped SSE stream (the priming event's
``retry``)."""


@attrs.frozen
class HttpSettings:
    """How the HTTP gateway listens and whom it lets in.

    ``token`` (a bearer token) or ``insecure=True`` is required for a non-loopback ``host``.
    ``allowed_hosts`` adds ``Host`` header values (``name`` or ``name:*`` for any port) the
    DNS-rebinding check accepts besides loopback and the bind address itself.
    ``resume_events`` bounds the recent SSE events kept for clients resuming a stream (oldest
    dropped first); 0 turns resumability off.
    """

    host: str = "127.0.0.1"
    port: int = 0
    token: str | None = attrs.field(default=None, repr=False)
    insecure: bool = False
    allowed_hosts: tuple[str, ...] = ()
    max_body_bytes: int = DEFAULT_MAX_REQUEST_BODY_SIZE
    path: str = "/mcp"
    resume_events: int = 1024

    def __attrs_post_init__(self) -> None:
        if not is_loopback(self.host) and self.token is None and not self.insecure:
            raise UsageError(
                "--http",
                f"binding {self.host} (not loopback) needs a bearer token "
                "(MCPVISOR_GATEWAY_TOKEN or --token-file) or an explicit --insecure",
            )
        if self.token is not None and not self.token.strip():
            raise UsageError("token", "the bearer token is empty")
        if self.max_body_bytes <= 0:
            raise UsageError("max_body_bytes", "must be positive")
        if self.resume_events < 0:
            raise UsageError("resume_events", "must be 0 (no resumability) or more")


def is_loopback(host: str) -> bool:
    """Whether ``host`` (a name or address) only accepts local connections."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def security_settings(settings: HttpSettings) -> TransportSecuritySettings:
    """The SDK's DNS-rebinding protection, on, for loopback, the bind address and extras."""
    bind = settings.host if ":" not in settings.host else f"[{settings.host.strip('[]')}]"
    names = [*_LOOPBACK_NAMES, bind]
    hosts = [f"{n}:*" for n in names] + list(settings.allowed_hosts)
    origins = [f"{scheme}://{n}:*" for n in names for scheme in ("http", "https")]
    return TransportSecuritySettings(
        enable_dns_rebinding_protection=True, allowed_hosts=hosts, allowed_origins=origins
    )


class BearerAuth:
    """Refuses requests without ``Authorization: Bearer <token>`` (401), except probes."""

    def __init__(self, app: ASGIApp, token: str) -> None:
        self.app = app
        self._expected = f"Bearer {token}".encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] not in _OPEN_PATHS:
            given = b""
            for key, value in scope["headers"]:
                if key == b"authorization":
                    given = value
                    break
            if not hmac.compare_digest(given, self._expected):
                response = PlainTextResponse(
                    "unauthorized", status_code=401, headers={"WWW-Authenticate": "Bearer"}
                )
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


class _Owner:
    """The session whose events are stored while serving one request: named by the request's
    header, or, for the request that opens a session, by its response."""

    __slots__ = ("session",)

    def __init__(self, session: str | None) -> None:
        self.session = session


_OWNER: ContextVar[_Owner | None] = ContextVar("mcpvisor_gateway_event_owner", default=None)


class _Event(NamedTuple):
    id: str
    stream: str
    owner: _Owner | None
    message: JSONRPCMessage | None


class SessionEventStore(EventStore):
    """The recent SSE events of every session, each replayable only to its own session.

    The SDK hands one store to all sessions and names a session's streams by its request ids
    and ``_GET_stream``, which other sessions use too; replaying by stream name alone would
    send one client's messages to another. So each event remembers its session, from the
    request being served when it was stored (a session's own tasks inherit that of the
    request that opened it; :class:`EventOwners` sets it), and a replay only follows the
    events of the session asking. Ids are random, so a client cannot guess another's. At most
    ``capacity`` events are kept, oldest dropped first; an event of no known session is
    never replayed.
    """

    def __init__(self, capacity: int) -> None:
        self._events: deque[_Event] = deque(maxlen=capacity)

    async def store_event(self, stream_id: str, message: JSONRPCMessage | None) -> str:
        event_id = secrets.token_urlsafe(16)
        self._events.append(_Event(event_id, stream_id, _OWNER.get(), message))
        return event_id

    async def replay_events_after(
        self, last_event_id: str, send_callback: EventCallback
    ) -> str | None:
        asking = _OWNER.get()
        session = asking.session if asking is not None else None
        events = list(self._events)
        start = next((i for i, e in enumerate(events) if e.id == last_event_id), None)
        if session is None or start is None or not _owned_by(events[start], session):
            return None
        stream = events[start].stream
        for event in events[start + 1 :]:
            if event.stream == stream and event.message is not None and _owned_by(event, session):
                await send_callback(EventMessage(event.message, event.id))
        return stream


def _owned_by(event: _Event, session: str) -> bool:
    return event.owner is not None and event.owner.session == session


class EventOwners:
    """Tells :class:`SessionEventStore` which session each request serves."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        header = MCP_SESSION_ID_HEADER.lower().encode()
        named = next((v for k, v in scope["headers"] if k == header), None)
        owner = _Owner(named.decode("latin-1") if named is not None else None)

        async def learn_session(message: Message) -> None:
            if owner.session is None and message["type"] == "http.response.start":
                for key, value in message.get("headers", ()):
                    if key.lower() == header:
                        owner.session = value.decode("latin-1")
            await send(message)

        token = _OWNER.set(owner)
        try:
            await self.app(scope, receive, learn_session)
        finally:
            _OWNER.reset(token)


def readiness(gateway: Gateway) -> tuple[bool, list[str]]:
    """Ready when every required server is ACTIVE; also the required ones that are not."""
    servers = gateway.client.status().servers
    waiting = [
        name
        for name, s in servers.items()
        if name in gateway.required and s.state is not ServerState.ACTIVE
    ]
    return not waiting, waiting


def build_app(
    gateway: Gateway, settings: HttpSettings, *, metrics_app: ASGIApp | None = None
) -> ASGIApp:
    """The gateway's ASGI app; serve it with :func:`serve_http` (or any Trio ASGI server).

    Its lifespan runs the SDK's session manager, so the server must send lifespan events.
    """

    async def healthz(_request: Request) -> Response:
        return PlainTextResponse("ok")

    async def readyz(_request: Request) -> Response:
        ready, waiting = readiness(gateway)
        body: dict[str, Any] = {"ready": ready, "waiting_for": waiting}
        return JSONResponse(body, status_code=200 if ready else 503)

    async def status(_request: Request) -> Response:
        body = gateway.client.status().to_dict()
        body["gateway"] = {
            "namespaced": gateway.namespaced,
            "tools": len(gateway.view.tools),
            "connections": gateway.connections,
        }
        return JSONResponse(body)

    routes: Sequence[Route] = [
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/status", status, methods=["GET"]),
    ]
    resumable = settings.resume_events > 0
    app = gateway.server.streamable_http_app(
        streamable_http_path=settings.path,
        transport_security=security_settings(settings),
        max_request_body_size=settings.max_body_bytes,
        host=settings.host,
        custom_starlette_routes=list(routes),
        event_store=SessionEventStore(settings.resume_events) if resumable else None,
        retry_interval=_SSE_RETRY_MS if resumable else None,
    )
    if metrics_app is not None:
        # A Route, not a Mount: a Mount would redirect scrapes of /metrics to /metrics/.
        app.router.routes.append(Route("/metrics", metrics_app, methods=["GET"]))
    return _with_auth(EventOwners(app) if resumable else app, settings)


def _with_auth(app: ASGIApp, settings: HttpSettings) -> ASGIApp:
    return app if settings.token is None else BearerAuth(app, settings.token)


async def serve_http(
    gateway: Gateway,
    settings: HttpSettings,
    *,
    metrics_app: ASGIApp | None = None,
    task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve ``gateway`` over HTTP with hypercorn's Trio worker until cancelled.

    ``task_status.started`` receives the bound address (``http://127.0.0.1:PORT``), which
    tells the real port when ``settings.port`` is 0.
    """
    try:
        from hypercorn.config import Config
        from hypercorn.trio import serve
    except ImportError:
        raise UsageError(
            "--http", "serving HTTP needs hypercorn: pip install 'mcpvisor[gateway]'"
        ) from None

    config = Config()
    host = settings.host if ":" not in settings.host else f"[{settings.host.strip('[]')}]"
    config.bind = [f"{host}:{settings.port}"]
    config.accesslog = None
    config.errorlog = None
    config.h11_max_incomplete_size = 64 * 1024
    config.graceful_timeout = 2.0
    app = build_app(gateway, settings, metrics_app=metrics_app)
    async with trio.open_nursery() as nursery:
        binds = await nursery.start(serve, app, config)
        task_status.started(binds[0])
