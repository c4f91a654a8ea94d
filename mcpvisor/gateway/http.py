"""The gateway over streamable HTTP: ``/mcp`` plus health, readiness, status and metrics.

One Starlette app served by hypercorn's Trio worker. ``/healthz`` says the process is up;
``/readyz`` answers 503 unless every required server is ACTIVE; ``/status`` is the
supervisor's status snapshot as JSON (no secrets: the snapshot holds none). ``/metrics`` is
served by an ASGI app the host supplies (an object, not a function, which Starlette would take
for a request handler; the observability extra provides one).

Access: a bearer token, when set, is required on every path but ``/healthz`` and ``/readyz``
(probes carry no credentials) and compared in constant time. The SDK's DNS-rebinding
protection checks ``Host`` and ``Origin`` on ``/mcp``; request bodies are size-limited.
"""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Sequence
from typing import Any

import attrs
import trio
from mcp.server.transport_security import DEFAULT_MAX_REQUEST_BODY_SIZE, TransportSecuritySettings
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from mcpvisor.gateway.server import Gateway
from mcpvisor.specs import UsageError
from mcpvisor.supervisor import ServerState

_OPEN_PATHS = frozenset({"/healthz", "/readyz"})
_LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")


@attrs.frozen
class HttpSettings:
    """How the HTTP gateway listens and whom it lets in.

    ``token`` (a bearer token) or ``insecure=True`` is required for a non-loopback ``host``.
    ``allowed_hosts`` adds ``Host`` header values (``name`` or ``name:*`` for any port) the
    DNS-rebinding check accepts besides loopback and the bind address itself.
    """

    host: str = "127.0.0.1"
    port: int = 0
    token: str | None = attrs.field(default=None, repr=False)
    insecure: bool = False
    allowed_hosts: tuple[str, ...] = ()
    max_body_bytes: int = DEFAULT_MAX_REQUEST_BODY_SIZE
    path: str = "/mcp"

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
    app = gateway.server.streamable_http_app(
        streamable_http_path=settings.path,
        transport_security=security_settings(settings),
        max_request_body_size=settings.max_body_bytes,
        host=settings.host,
        custom_starlette_routes=list(routes),
    )
    if metrics_app is not None:
        # A Route, not a Mount: a Mount would redirect scrapes of /metrics to /metrics/.
        app.router.routes.append(Route("/metrics", metrics_app, methods=["GET"]))
    return _with_auth(app, settings)


def _with_auth(app: Starlette, settings: HttpSettings) -> ASGIApp:
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
