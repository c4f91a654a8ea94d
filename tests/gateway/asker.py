"""An ``MCPServer`` that asks its client a question and then takes it back, for the gateway's
server-to-client cancellation tests.

Run as ``python asker.py [--transport stdio|streamable-http] [--port N]`` (HTTP prints
``PORT <n>`` once it listens). Tools:

- ``ask_then_cancel()``: sends ``sampling/createMessage`` (a 2025-era request), and cancels it
  as soon as ``release()`` is called; returns ``"taken back"`` (or the model's text, if the
  client answered first).
- ``release()``: lets ``ask_then_cancel`` cancel its question.
"""

from __future__ import annotations

import argparse
import socket
import sys

import anyio
import mcp_types as types
from mcp.server.mcpserver import Context, MCPServer

server = MCPServer("gateway-asker")
_state: dict[str, anyio.Event] = {}


@server.tool()
async def ask_then_cancel(ctx: Context) -> str:
    """Ask the client's model, then cancel the question once ``release`` is called."""
    released = _state["released"] = anyio.Event()
    session = ctx.request_context.session
    message = types.SamplingMessage(role="user", content=types.TextContent(text="never mind"))
    answer: str = "taken back"
    async with anyio.create_task_group() as group:

        async def ask() -> None:
            nonlocal answer
            result = await session.create_message(
                [message], max_tokens=10, related_request_id=ctx.request_id
            )
            answer = getattr(result.content, "text", "?")
            group.cancel_scope.cancel()

        group.start_soon(ask)
        await released.wait()
        group.cancel_scope.cancel()
    return answer


@server.tool()
def release() -> str:
    """Let ``ask_then_cancel`` take its question back."""
    if "released" in _state:
        _state["released"].set()
    return "released"


def _serve_http(port: int) -> None:
    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen(128)
    config = uvicorn.Config(server.streamable_http_app(), log_level="warning", lifespan="on")
    print(f"PORT {sock.getsockname()[1]}", flush=True)
    anyio.run(uvicorn.Server(config).serve, [sock])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--transport", default="stdio", choices=["stdio", "streamable-http"])
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    if args.transport == "stdio":
        server.run()
    else:
        _serve_http(args.port)
    sys.exit(0)


if __name__ == "__main__":
    main()
