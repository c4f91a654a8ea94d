"""The command line of the tests' ``MCPServer`` scripts, in one place.

``python script.py [--transport stdio|streamable-http|sse] [--port N]``: stdio by default;
over HTTP it listens on 127.0.0.1 (port 0: ephemeral) and prints ``PORT <n>`` once the
socket listens, so a test never guesses a free port.
"""

from __future__ import annotations

import argparse
import socket
import sys

import anyio
from mcp.server.mcpserver import MCPServer


def _serve_http(server: MCPServer, transport: str, port: int) -> None:
    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen(128)
    app = server.streamable_http_app() if transport == "streamable-http" else server.sse_app()
    config = uvicorn.Config(app, log_level="warning", lifespan="on")
    print(f"PORT {sock.getsockname()[1]}", flush=True)
    anyio.run(uvicorn.Server(config).serve, [sock])


def main(server: MCPServer) -> None:
    """Serve ``server`` as the command line says, then exit."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--transport", default="stdio", choices=["stdio", "streamable-http", "sse"])
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    if args.transport == "stdio":
        server.run()
    else:
        _serve_http(server, args.transport, args.port)
    sys.exit(0)
