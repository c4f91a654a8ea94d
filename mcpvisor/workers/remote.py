"""Streamable HTTP and SSE sessions: the HTTP client, its pool, and what its statuses mean.

The SDK turns an HTTP failure into a JSON-RPC error with a stand-in message ("Server returned
an error response"), which hides whether a token was wrong (401) or the server broke (500),
and makes a proxy's 502 look like an answer. :class:`HttpStatusLog` watches the responses
themselves, so probes can tell a real answer from a transport failure and causes can say
which status the server gave.
"""

from __future__ import annotations

import attrs
import httpx2
from mcp.shared.exceptions import MCPError

from mcpvisor.specs import HttpSpec

_STANDING_STREAMS = 4
"""Connections a session holds besides its requests: the GET stream, a ``listen``, a probe and a
list refetch; each may be open while ``max_concurrency`` requests are."""

_SESSION_GONE = ("session not found", "session terminated", "no valid session", "invalid session")
"""How servers say they no longer know a session id (the SDK's, TypeScript's, Starlette's)."""


def is_session_gone(error: MCPError) -> bool:
    """Whether ``error`` says the server no longer knows this HTTP session (it restarted).

    Judged by the message alone: the TypeScript SDK answers with code -32000, which is also
    the code the Python SDK uses for a closed connection.
    """
    message = error.error.message.lower()
    return any(text in message for text in _SESSION_GONE)


@attrs.define
class HttpStatusLog:
    """Counts POST responses with an error status and keeps the last one, as ``HTTP 401 ...``.

    Installed as an httpx response hook; ``failures`` only grows, so a caller compares it
    before and after a request to learn whether that request met an HTTP failure.
    """

    failures: int = 0
    last: str | None = None

    async def on_response(self, response: httpx2.Response) -> None:
        if response.request.method == "POST" and response.status_code >= 400:
            self.failures += 1
            reason = response.reason_phrase
            self.last = f"HTTP {response.status_code}" + (f" {reason}" if reason else "")


def http_client(spec: HttpSpec, status_log: HttpStatusLog) -> httpx2.AsyncClient:
    """The client a streamable-HTTP session uses, with a pool no accepted spec can exhaust.

    httpx's default pool (100 connections) is smaller than a ``max_concurrency`` of 100 plus
    the standing GET stream, and a request that waits out the pool timeout kills the session
    (``PoolTimeout``); the pool is sized from ``max_concurrency`` instead.
    """
    t = spec.timeouts
    size = spec.max_concurrency + _STANDING_STREAMS
    return httpx2.AsyncClient(
        headers=dict(spec.headers),
        timeout=httpx2.Timeout(t.connect, read=max(300.0, t.request + t.probe_timeout)),
        limits=httpx2.Limits(max_connections=size, max_keepalive_connections=size),
        event_hooks={"response": [status_log.on_response]},
    )
