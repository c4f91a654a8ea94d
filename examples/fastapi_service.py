"""A FastAPI service on uvicorn with supervised MCP servers underneath.

The supervisor is opened once, in the app's ``lifespan``, and shared by every request: open
it in lifespan, never per request (a supervisor per request would spawn and kill every
server each time, and supervise nothing). Its Trio run lives in its own thread, so a crash is
noticed and the server restarted even while a handler blocks the event loop.

- ``GET /health``: the status snapshot (``client.status().to_dict()``, a plain read that never
  blocks the loop); HTTP 200 when healthy or degraded, 503 when unavailable (a required server
  is down), so a load balancer stops routing here.
- ``GET /tools``: every tool of every serving server, as ``server__tool`` names.
- ``POST /call`` with ``{"tool": "server__tool", "arguments": {...}}``: one tool call; 200 with
  the result, or 404 unknown tool, 503 server unavailable, 502 interrupted by a crash, 504
  timed out. A client that disconnects cancels its call on the server (see
  :func:`until_disconnect`: Starlette itself never cancels a handler whose client went away).

Run it with ``python examples/fastapi_service.py [--port 8080] [--config mcp.json]`` and try
``curl localhost:8080/health``; SIGTERM or Ctrl-C stops uvicorn, which closes the lifespan
and with it every server.
"""

from __future__ import annotations

import argparse
import asyncio
import socket
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

import mcpvisor as mv
import mcpvisor.aio
from mcpvisor.demo import stdio_spec

T = TypeVar("T")


class ClientGone(Exception):
    """The HTTP client disconnected before its call was answered."""


async def until_disconnect(request: Request, call: Awaitable[T]) -> T:
    """``await call``, cancelled when the client disconnects, which raises :class:`ClientGone`.

    Starlette never cancels a handler whose client went away: without this, an abandoned call
    runs on the server to its end, and uvicorn's shutdown waits for it. Once the body has been
    read, the request's receive channel has nothing left to deliver but ``http.disconnect``.
    """

    async def watch() -> None:
        while (await request.receive())["type"] != "http.disconnect":
            pass
        raise ClientGone

    try:
        async with asyncio.TaskGroup() as group:
            watcher = group.create_task(watch())
            try:
                return await call
            finally:
                watcher.cancel()
    except BaseExceptionGroup as failed:
        # One error: the call's own, or ClientGone (the group has cancelled the call).
        raise failed.exceptions[0] from None


def services() -> mv.SupervisorSpec:
    """What this service depends on: ``notes`` is required, ``scratch`` is nice to have."""
    return mv.SupervisorSpec(
        servers=[stdio_spec("notes", required=True), stdio_spec("scratch", "notes")]
    )


class Call(BaseModel):
    """The body of ``POST /call``."""

    tool: str
    arguments: dict[str, Any] = Field(default_factory=dict)


def make_app(spec: mv.SupervisorSpec | str) -> FastAPI:
    """The app; ``spec`` is a spec or a config file path, supervised for the app's lifetime."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with mcpvisor.aio.open_supervisor(spec) as client:
            app.state.mcp = client
            yield
        print("every server is stopped", flush=True)

    app = FastAPI(title="mcpvisor on FastAPI", lifespan=lifespan)

    def mcp(request: Request) -> mcpvisor.aio.SupervisorClient:
        client: mcpvisor.aio.SupervisorClient = request.app.state.mcp
        return client

    @app.get("/health")
    async def health(request: Request) -> JSONResponse:
        status = mcp(request).status()
        code = 503 if status.health == "unavailable" else 200
        return JSONResponse(status.to_dict(), status_code=code)

    @app.get("/tools")
    async def tools(request: Request) -> list[dict[str, Any]]:
        return [
            {
                "name": entry.qualified_name,
                "server": entry.server,
                "description": entry.tool.description,
                "input_schema": entry.tool.input_schema,
            }
            for entry in await mcp(request).list_tools()
        ]

    @app.post("/call")
    async def call(body: Call, request: Request) -> JSONResponse:
        try:
            result = await until_disconnect(
                request, mcp(request).call_tool(body.tool, body.arguments)
            )
        except ClientGone:
            print(f"{body.tool}: the client went away; its call is cancelled", flush=True)
            return JSONResponse({"error": "the client went away"}, status_code=499)
        except (mv.UnknownServerError, mv.UnknownToolError) as error:
            return JSONResponse({"error": str(error)}, status_code=404)
        except mv.ServerUnavailableError as error:
            return JSONResponse({"error": str(error)}, status_code=503)
        except mv.RequestInterruptedError as error:
            return JSONResponse({"error": str(error)}, status_code=502)
        except mv.RequestTimeoutError as error:
            return JSONResponse({"error": str(error)}, status_code=504)
        return JSONResponse(result.model_dump(mode="json", by_alias=True))

    return app


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--port", type=int, default=8080, help="0 picks a free port")
    parser.add_argument("--config", help="an MCP host config file (default: bundled servers)")
    args = parser.parse_args(argv)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", args.port))
    app = make_app(args.config or services())
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    print(f"serving on http://127.0.0.1:{sock.getsockname()[1]}", flush=True)
    server.run(sockets=[sock])


if __name__ == "__main__":
    main()
