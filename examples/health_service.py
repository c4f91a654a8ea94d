"""A Trio web service with supervised MCP servers underneath, and a health endpoint.

The usual FastAPI recipe keeps a manager of MCP connections next to the app and reports
``active_servers`` / ``failed_servers`` from ``/health/mcp``; when a server dies, someone has
to notice and reconnect. Here mcpvisor supervises the servers (restarts with backoff, drops
what cannot start) and the service only reads its status:

- ``GET /health``: ``client.status().to_dict()``; HTTP 200 when healthy or degraded, 503 when
  unavailable (a required server is down), so a load balancer stops routing here.
- ``POST /call`` with ``{"tool": "server__tool", "arguments": {...}}``: one tool call through
  the supervisor; 200 with the result, or an error status saying why (404 unknown tool,
  400 bad request, 503 server unavailable, 502 interrupted by a crash, 504 timed out).

The ASGI app is a few lines by hand (no web framework) served by hypercorn's trio worker.
Run it with ``python examples/health_service.py [--port 8080]`` and try
``curl localhost:8080/health``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import sys
from collections.abc import Awaitable, Callable, MutableMapping
from functools import partial
from typing import Any

import structlog
import trio
from hypercorn.config import Config
from hypercorn.trio import serve

import mcpvisor as mv
from mcpvisor.demo import stdio_spec

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]


def services() -> mv.SupervisorSpec:
    """What this service depends on: ``notes`` is required, ``flaky`` is nice to have."""
    return mv.SupervisorSpec(
        servers=[
            stdio_spec("notes", required=True),
            stdio_spec("flaky", None, "--crash-after", "0"),
        ]
    )


async def _respond(send: Send, status: int, body: object) -> None:
    payload = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(payload)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})


async def _read_body(receive: Receive, limit: int = 1 << 20) -> bytes:
    body = b""
    while True:
        message = await receive()
        chunk: bytes = message.get("body", b"")
        body += chunk
        if len(body) > limit:
            raise ValueError("request body too large")
        if not message.get("more_body", False):
            return body


def make_app(client: Any) -> App:
    """An ASGI app answering ``/health`` and ``/call`` from the supervisor ``client``."""

    async def health(send: Send) -> None:
        status = client.status()
        await _respond(send, 503 if status.health == "unavailable" else 200, status.to_dict())

    async def call(receive: Receive, send: Send) -> None:
        try:
            request = json.loads(await _read_body(receive))
            tool = request["tool"]
            arguments = request.get("arguments", {})
            if not isinstance(tool, str) or not isinstance(arguments, dict):
                raise TypeError
        except (ValueError, KeyError, TypeError):
            await _respond(
                send, 400, {"error": 'expected {"tool": "server__tool", "arguments": {}}'}
            )
            return
        try:
            result = await client.call_tool(tool, arguments)
        except (mv.UnknownServerError, mv.UnknownToolError) as exc:
            await _respond(send, 404, {"error": str(exc)})
        except mv.ServerUnavailableError as exc:
            await _respond(send, 503, {"error": str(exc)})
        except mv.RequestInterruptedError as exc:
            await _respond(send, 502, {"error": str(exc)})
        except mv.RequestTimeoutError as exc:
            await _respond(send, 504, {"error": str(exc)})
        else:
            await _respond(send, 200, result.model_dump(mode="json", by_alias=True))

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        route = (scope["method"], scope["path"])
        if route == ("GET", "/health"):
            await health(send)
        elif route == ("POST", "/call"):
            await call(receive, send)
        else:
            await _respond(send, 404, {"error": f"no route {scope['method']} {scope['path']}"})

    return app


async def serve_health(
    spec: mv.SupervisorSpec,
    *,
    host: str = "127.0.0.1",
    port: int = 8080,
    task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Supervise ``spec`` and serve the app on ``host:port`` (0 picks a free port).

    ``task_status.started`` reports the base URL once the servers are up and the socket is
    listening; cancel the surrounding scope to stop both.
    """
    config = Config()
    config.bind = [f"{host}:{port}"]
    config.accesslog = None
    async with mv.open_supervisor(spec) as client, trio.open_nursery() as nursery:
        binds = await nursery.start(serve, make_app(client), config)
        task_status.started(binds[0])


def quiet_logging() -> None:
    """mcpvisor logs through structlog and leaves configuring it to the host: warnings and
    above, to stderr."""
    structlog.configure(
        wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--port", type=int, default=8080)
    args = parser.parse_args(argv)
    quiet_logging()

    async def run() -> None:
        async with trio.open_nursery() as nursery:
            url = await nursery.start(partial(serve_health, services(), port=args.port))
            print(f"serving on {url}: GET /health, POST /call (Ctrl-C stops)", flush=True)

    with contextlib.suppress(KeyboardInterrupt):
        trio.run(run)


if __name__ == "__main__":
    main()
