"""Opening a session: the transport a spec names, the SDK client over it, and why a start failed.

Every transport but in-process is a :class:`~mcpvisor.workers.link.Link`, so the worker hears
the moment it is gone. A failed start becomes one :class:`StartError` whose kind says which
step failed and whose cause is redacted, so it is safe to log and to show.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Mapping
from contextlib import AsyncExitStack
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import attrs
import httpx2
import mcp_types as types
from mcp import Client
from mcp.client.session import MessageHandlerFnT
from mcp.client.sse import sse_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError
from mcp_types import CONNECTION_CLOSED
from mcp_types.version import MODERN_PROTOCOL_VERSIONS
from pydantic import ValidationError

from mcpvisor.specs import HttpSpec, InProcessSpec, ServerSpec, SseSpec, StdioSpec
from mcpvisor.workers.errors import StartError, StartErrorKind
from mcpvisor.workers.link import Link, WatchedTransport
from mcpvisor.workers.remote import HttpStatusLog, http_client
from mcpvisor.workers.stdio import StdioTransport

_SSE_READ_TIMEOUT = 24 * 3600.0
"""SSE streams idle between events; liveness is the probes' job, not a read timeout's."""

_BAD_SPAWN = (FileNotFoundError, PermissionError, NotADirectoryError)
"""Spawn errors that mean the spec is wrong (no such command, bad cwd), not that it is busy."""


@functools.cache
def _our_version() -> str:
    """Looked up once: ``importlib.metadata`` scans the installed distributions (~1-5 ms),
    synchronously, which every restart would otherwise pay before it spawns."""
    try:
        return version("mcpvisor")
    except PackageNotFoundError:  # pragma: no cover - running from a bare checkout
        return "0"


@functools.cache
def _client_info() -> types.Implementation:
    """One for every session: the SDK only reads it, and a copy per session would be kept."""
    return types.Implementation(name="mcpvisor", version=_our_version())


@attrs.define
class Opening:
    """A session being opened: its link (a plain one for in-process servers) and HTTP statuses."""

    link: Link = attrs.field(factory=Link)
    http: HttpStatusLog | None = None


async def open_client(
    spec: ServerSpec,
    stack: AsyncExitStack,
    opening: Opening,
    *,
    name: str,
    redact: Callable[[str], str],
    message_handler: MessageHandlerFnT,
    callbacks: Mapping[str, Any] | None = None,
) -> Client:
    """Enter the transport and the SDK client for ``spec`` on ``stack``; fill in ``opening``.

    ``spec.protocol`` is the client's ``mode``: how the protocol era is negotiated.
    ``callbacks`` are the server-to-client callbacks (see :mod:`mcpvisor.workers.callbacks`).
    """
    t = spec.timeouts
    server: Any
    if isinstance(spec, StdioSpec):
        opening.link = server = StdioTransport(
            spec, server=name, shutdown_timeout=t.shutdown, redact=redact
        )
    elif isinstance(spec, HttpSpec):
        opening.http = HttpStatusLog()
        http = await stack.enter_async_context(http_client(spec, opening.http))
        inner = streamable_http_client(spec.url, http_client=http)
        opening.link = server = WatchedTransport(inner)
        opening.http.on_unreachable = server.lose
    elif isinstance(spec, SseSpec):
        inner = sse_client(
            spec.url,
            headers=dict(spec.headers),
            timeout=t.connect,
            sse_read_timeout=_SSE_READ_TIMEOUT,
        )
        opening.link = server = WatchedTransport(inner)
    elif isinstance(spec, InProcessSpec):
        server = spec.server
    else:  # pragma: no cover - specs are validated
        raise StartError(name, "config", f"unsupported spec {type(spec).__name__}")
    client = Client(
        server,
        mode=spec.protocol,
        client_info=_client_info(),
        message_handler=message_handler,
        **(callbacks or {}),
    )
    await stack.enter_async_context(client)
    if spec.protocol in MODERN_PROTOCOL_VERSIONS:
        await _discover(client, spec.protocol)
    return client


async def _discover(client: Client, version: str) -> None:
    """Learn a pinned 2026-era server's capabilities, which the SDK does not ask for when a
    version is pinned (it assumes none, so nothing would be listed). A server that cannot
    answer ``server/discover`` keeps the assumption."""
    try:
        raw = await client.session.send_discover(version)
        client.session.adopt(types.DiscoverResult.model_validate(raw))
    except (MCPError, ValidationError, RuntimeError):
        return


def describe(leaves: Iterable[BaseException], redact: Callable[[str], str]) -> str:
    """Errors as one line safe to log: redacted before it is cut, so no secret is cut in two."""
    parts = []
    for leaf in leaves:
        text = str(leaf.error.message if isinstance(leaf, MCPError) else leaf)
        parts.append(f"{type(leaf).__name__}: {text}" if text else type(leaf).__name__)
    return redact("; ".join(parts[:3]))[:500] or "unknown error"


def _is_unreachable(error: BaseException) -> bool:
    if isinstance(error, MCPError):
        return error.code == CONNECTION_CLOSED
    return isinstance(error, OSError | httpx2.HTTPError)


def start_error(
    spec: ServerSpec,
    opening: Opening,
    leaves: list[BaseException],
    *,
    name: str,
    redact: Callable[[str], str],
) -> StartError:
    """What a start that raised ``leaves`` failed at, as a :class:`StartError`."""
    link, http = opening.link, opening.http
    cause = describe(leaves, redact)
    kind: StartErrorKind
    if link.lost:
        kind = "protocol" if link.kind == "protocol" else "exited"
        cause = link.cause or cause
    elif any(isinstance(e, _BAD_SPAWN) for e in leaves):
        kind = "config"
    elif http is not None and http.failures:
        # 401 (a wrong token) and 500 (a broken server) must read differently.
        kind = "connect"
        cause = f"the server answered {http.last}: {cause}"
    elif any(_is_unreachable(e) for e in leaves):
        kind = "connect"
    elif isinstance(spec, InProcessSpec) and not any(isinstance(e, MCPError) for e in leaves):
        kind = "exited"  # the server's own code raised: it died while starting
    else:
        kind = "protocol"
    return StartError(name, kind, redact(cause))
