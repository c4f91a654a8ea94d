"""A streamable-HTTP MCP server with a made-up forecast tool.

``--fd N`` serves on an already listening socket inherited from the parent (the parent binds
127.0.0.1:0 first, so it knows the port before this process has even imported anything, and
early connections wait in the listen backlog). ``--port P`` binds 127.0.0.1:P itself.
The MCP endpoint is ``/mcp``. ``--exit-with-stdin`` makes it exit when its stdin reaches
end of file: the parent holds the pipe's other end, which the kernel closes when the parent
dies in any way, SIGKILL included, so the server never outlives the process that started it.
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
import threading
import time
from functools import partial

import anyio
import uvicorn
from mcp.server.mcpserver import MCPServer

server: MCPServer = MCPServer("weather", log_level="WARNING")
_SKIES = ("sunny", "cloudy", "rain", "fog", "snow", "wind")


@server.tool()
def forecast(city: str) -> str:
    """A deterministic, entirely made-up forecast for ``city``."""
    n = sum(map(ord, city.lower()))
    return f"{city}: {_SKIES[n % len(_SKIES)]}, {n % 30 - 5} C"


def _exit_with_stdin(server: uvicorn.Server) -> None:
    """Stop ``server`` once stdin closes; exit outright if it has not stopped 3 s later."""

    def watch() -> None:
        while sys.stdin.buffer.read(65536):
            pass
        server.should_exit = True
        time.sleep(3)
        os._exit(0)

    threading.Thread(target=watch, name="exit-with-stdin", daemon=True).start()


async def _serve(sock: socket.socket | None, port: int, *, exit_with_stdin: bool = False) -> None:
    app = server.streamable_http_app(host="127.0.0.1")
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        log_level="warning",
        timeout_graceful_shutdown=1,
        lifespan="on",
    )
    web = uvicorn.Server(config)
    if exit_with_stdin:
        _exit_with_stdin(web)
    await web.serve(sockets=[sock] if sock is not None else None)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m mcpvisor.demo.weather")
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--fd", type=int, help="an inherited, listening socket")
    where.add_argument("--port", type=int, help="bind 127.0.0.1:PORT")
    parser.add_argument(
        "--exit-with-stdin", action="store_true", help="exit when stdin closes (parent died)"
    )
    args = parser.parse_args(argv)
    sock = socket.socket(fileno=args.fd) if args.fd is not None else None
    anyio.run(partial(_serve, sock, args.port or 0, exit_with_stdin=args.exit_with_stdin))


if __name__ == "__main__":
    main()
