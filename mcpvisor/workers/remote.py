"""Streamable HTTP and SSE sessions: the HTTP client, its pool, and what its statuses mean.

The SDK turns an HTTP failure into a JSON-RPC error with a stand-in message ("Server returned
an error response"), which hides whether a token was wrong (401) or the server broke (500),
and makes a proxy's 502 look like an answer. :class:`HttpStatusLog` watches the responses
themselves, so probes can tell a real answer from a transport failure and causes can say
which status the server gave.
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Callable

import attrs
import httpx2
from mcp.shared.exceptions import MCPError

from mcpvisor.specs import HttpSpec

_STANDING_STREAMS = 4
"""Connections a session holds besides its requests: the GET stream, a ``listen``, a probe and a
list refetch; each may be open while ``max_concurrency`` requests are."""

_SESSION_GONE = ("session not found", "session terminated", "no valid session", "invalid session")
"""How servers say they no longer know a session id (the SDK's, TypeScript's, Starlette's)."""


_ERROR_BODY_BYTES = 65536
"""The most of an error response's body read to learn what the server said."""


def _names_a_gone_session(text: str) -> bool:
    lowered = text.lower()
    return any(words in lowered for words in _SESSION_GONE)


@attrs.define
class HttpStatusLog:
    """Counts POST responses with an error status and keeps the last one, as ``HTTP 401 ...``.

    Installed as an httpx response hook; ``failures`` only grows, so a caller compares it
    before and after a request to learn whether that request met an HTTP failure.

    ``session_gone`` keeps what the server said when it answered a request on this session
    with 400 or 404 and words that say it does not know the session (unredacted, so kept out
    of the repr; the worker redacts it for the cause). The SDK passes such an answer on only
    when its body is a JSON-RPC error with an ``id``; the TypeScript SDK's ("Bad Request: No
    valid session ID provided", after a restart) has none, and reaches the worker as the
    SDK's stand-in message, which says nothing of the session.
    """

    failures: int = 0
    last: str | None = None
    session_gone: str | None = attrs.field(default=None, repr=False)
    on_unreachable: Callable[[str], None] | None = attrs.field(default=None, repr=False)
    """Called with a cause when a GET (the standing stream, or its reconnect) cannot connect
    (see :func:`http_client`): a server that died while idle is otherwise only seen by a
    probe."""

    async def on_response(self, response: httpx2.Response) -> None:
        if response.request.method != "POST" or response.status_code < 400:
            return
        self.failures += 1
        reason = response.reason_phrase
        self.last = f"HTTP {response.status_code}" + (f" {reason}" if reason else "")
        if (
            response.status_code in (400, 404)
            and self.session_gone is None
            and "mcp-session-id" in response.request.headers
        ):
            said = await _said_in(response)
            if said is not None and _names_a_gone_session(said):
                self.session_gone = said

    def says_session_gone(self, error: MCPError) -> bool:
        """Whether ``error``, or the HTTP answer it may stand for, says the server no longer
        knows this session (it restarted). Judged by the words alone: the TypeScript SDK
        answers with code -32000, which is also the Python SDK's code for a closed connection.
        """
        return self.session_gone is not None or _names_a_gone_session(error.error.message)


async def _said_in(response: httpx2.Response) -> str | None:
    """The message of an error response's body: a JSON-RPC error's, else the text itself.

    Read only when its length is declared and small, or when it is JSON, which the SDK reads
    whole anyway; the read content stays on the response for the SDK.
    """
    kind = response.headers.get("content-type", "").lower()
    try:
        size = int(response.headers.get("content-length", ""))
    except ValueError:
        size = None
    if (size is None or size > _ERROR_BODY_BYTES) and not kind.startswith("application/json"):
        return None
    try:
        body = await response.aread()
    except httpx2.HTTPError:
        return None
    text = body[:_ERROR_BODY_BYTES].decode(errors="replace")
    try:
        parsed = json.loads(text)
    except (ValueError, RecursionError):
        return text
    error = parsed.get("error") if isinstance(parsed, dict) else None
    message = error.get("message") if isinstance(error, dict) else None
    return message if isinstance(message, str) else text


class _Watched(httpx2.AsyncBaseTransport):
    """A transport that tells ``status_log`` when a GET cannot connect.

    The SDK reopens a dropped standing GET stream once, a second later, and gives up quietly
    if that fails: a server that died while idle left a session that looked alive, without
    its server-to-client stream, until a probe missed ``probe_misses`` times. A GET that
    cannot connect (refused, or its host not found) is the server gone.
    """

    def __init__(self, inner: httpx2.AsyncBaseTransport, status_log: HttpStatusLog) -> None:
        self._inner = inner
        self._status_log = status_log

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        try:
            return await self._inner.handle_async_request(request)
        except httpx2.ConnectError as error:
            notify = self._status_log.on_unreachable
            if request.method == "GET" and notify is not None:
                said = str(error) or type(error).__name__
                notify(f"the server stopped accepting connections ({said})")
            raise

    async def aclose(self) -> None:
        await self._inner.aclose()


def http_client(spec: HttpSpec, status_log: HttpStatusLog) -> httpx2.AsyncClient:
    """The client a streamable-HTTP session uses, with a pool no accepted spec can exhaust.

    httpx's default pool (100 connections) is smaller than a ``max_concurrency`` of 100 plus
    the standing GET stream, and a request that waits out the pool timeout kills the session
    (``PoolTimeout``); the pool is sized from ``max_concurrency`` instead.

    Its transport is httpx's own, watched (:class:`_Watched`), unless the environment names a
    proxy: httpx honours ``HTTPS_PROXY`` and its kin only for a client given no transport, and
    a refused connection would then be the proxy's, not the server's (probes still watch).
    """
    t = spec.timeouts
    size = spec.max_concurrency + _STANDING_STREAMS
    limits = httpx2.Limits(max_connections=size, max_keepalive_connections=size)
    watched = None
    if not urllib.request.getproxies():
        watched = _Watched(httpx2.AsyncHTTPTransport(limits=limits), status_log)
    return httpx2.AsyncClient(
        headers=dict(spec.headers),
        timeout=httpx2.Timeout(t.connect, read=max(300.0, t.request + t.probe_timeout)),
        limits=limits,
        transport=watched,
        event_hooks={"response": [status_log.on_response]},
    )
