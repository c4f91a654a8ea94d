"""An ``MCPServer`` (the SDK's high-level server) for tests, over stdio, streamable HTTP or SSE.

Run as ``python mcp_server.py [--transport stdio|streamable-http|sse] [--port N]``. Over HTTP it
binds 127.0.0.1 itself (``--port 0`` picks a free port) and prints ``PORT <n>`` on stdout once
the socket listens, so a test can connect without polling. Tools:

- ``add(a, b)``: the sum.
- ``sleep(seconds)``: reports progress 0 (so a test knows the call arrived), sleeps, then
  returns ``"slept"``; for calls that are in flight on purpose.
- ``fail()``: a tool error (``isError`` result).
"""

from __future__ import annotations

import anyio
from mcp.server.mcpserver import Context, MCPServer
from mcpserver_main import main

server = MCPServer("test-mcp-server", instructions="A server for mcpvisor's tests.")


@server.tool()
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


@server.tool()
async def sleep(seconds: float, ctx: Context) -> str:
    """Report progress 0 (the call has arrived), sleep, then answer."""
    await ctx.report_progress(0)
    await anyio.sleep(seconds)
    return "slept"


@server.tool()
def fail() -> str:
    """Always fails."""
    raise ValueError("this tool always fails")


if __name__ == "__main__":
    main(server)
