"""A minimal Trio HTTP/1.1 server for one purpose: answering Prometheus scrapes.

One request per connection, ``GET`` (or ``HEAD``) of ``/metrics`` only. A scraper that
stalls or sends garbage gets a short answer or is dropped after :data:`READ_TIMEOUT`; it never
holds the supervisor up.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import trio

from mcpvisor.specs._logging import library_logger

if TYPE_CHECKING:
    from mcpvisor.observability._prometheus import PrometheusMetrics

log = library_logger()

READ_TIMEOUT = 10.0
"""Seconds a client has to send its request head."""

MAX_HEAD = 16 * 1024
"""Bytes a request head may take; a longer one is refused with 431."""

_REASONS = {
    200: "OK",
    400: "Bad Request",
    404: "Not Found",
    405: "Method Not Allowed",
    408: "Request Timeout",
    431: "Request Header Fields Too Large",
    500: "Internal Server Error",
}


async def serve_metrics(
    metrics: PrometheusMetrics, host: str, port: int, *, task_status: Any = None
) -> None:
    """Listen on ``host:port`` and answer scrapes from ``metrics`` until cancelled.

    Reports the bound ``(host, port)`` through ``task_status`` (so ``port=0`` works).
    """
    try:
        listeners = await trio.open_tcp_listeners(port, host=host)
    except OSError as error:
        # The bare errno text would not say which of the host's listeners could not bind.
        reason = error.strerror or str(error)
        raise OSError(error.errno, f"cannot serve metrics on {host}:{port}: {reason}") from error
    bound = listeners[0].socket.getsockname()
    if task_status is not None:
        task_status.started((bound[0], bound[1]))
    log.info("metrics.listening", host=bound[0], port=bound[1])

    async def handle(stream: trio.SocketStream) -> None:
        try:
            async with stream:
                await _answer(metrics, stream)
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            log.debug("metrics.client_gone", exc_info=True)

    await trio.serve_listeners(handle, listeners)


async def _read_head(stream: trio.SocketStream) -> bytes | int:
    """The request head, or the status code to refuse it with."""
    head = b""
    with trio.move_on_after(READ_TIMEOUT):
        while b"\r\n\r\n" not in head:
            if len(head) > MAX_HEAD:
                return 431
            chunk = await stream.receive_some(4096)
            if not chunk:
                return 400
            head += chunk
        return head.split(b"\r\n\r\n", 1)[0]
    return 408


async def _answer(metrics: PrometheusMetrics, stream: trio.SocketStream) -> None:
    head = await _read_head(stream)
    if isinstance(head, int):
        await _respond(stream, head, b"", "text/plain; charset=utf-8")
        return
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/"):
        await _respond(stream, 400, b"bad request line\n", "text/plain; charset=utf-8")
        return
    method, target = parts[0], parts[1]
    if target.split("?", 1)[0] != "/metrics":
        await _respond(stream, 404, b"try /metrics\n", "text/plain; charset=utf-8")
        return
    if method not in ("GET", "HEAD"):
        await _respond(stream, 405, b"GET only\n", "text/plain; charset=utf-8", allow="GET, HEAD")
        return
    accept = ",".join(
        line.split(":", 1)[1].strip()
        for line in lines[1:]
        if line.split(":", 1)[0].strip().lower() == "accept" and ":" in line
    )
    try:
        body, content_type = metrics.render(accept)
    except Exception:
        log.exception("metrics.render_failed")
        await _respond(stream, 500, b"scrape failed\n", "text/plain; charset=utf-8")
        return
    await _respond(stream, 200, body, content_type, head_only=method == "HEAD")


async def _respond(
    stream: trio.SocketStream,
    status: int,
    body: bytes,
    content_type: str,
    *,
    allow: str | None = None,
    head_only: bool = False,
) -> None:
    headers = [
        f"HTTP/1.1 {status} {_REASONS[status]}",
        f"Content-Type: {content_type}",
        f"Content-Length: {len(body)}",
        "Connection: close",
    ]
    if allow is not None:
        headers.append(f"Allow: {allow}")
    out = ("\r\n".join(headers) + "\r\n\r\n").encode("latin-1")
    await stream.send_all(out if head_only else out + body)
