"""An ``MCPServer`` whose tool list changes, over stdio, for the worker's catalog tests.

Tools: ``touch()`` announces a tool list change without changing anything; ``grow()`` adds
``new_tool`` and announces it. Either era hears of it its own way: a notification in the
handshake era, an event on ``subscriptions/listen`` in the 2026-07-28 era.
"""

from __future__ import annotations

from mcp.server.mcpserver import Context, MCPServer
from mcpserver_main import main

server = MCPServer("changing")


async def _announce(ctx: Context) -> None:
    if ctx.request_context.protocol_version.startswith("2026"):
        await ctx.notify_tools_changed()
    else:
        await ctx.request_context.session.send_tool_list_changed()


@server.tool()
async def touch(ctx: Context) -> str:
    """Announce a change that is not one."""
    await _announce(ctx)
    return "touched"


@server.tool()
async def grow(ctx: Context) -> str:
    """Add ``new_tool`` and announce it."""
    server.add_tool(lambda: "new", name="new_tool")
    await _announce(ctx)
    return "grown"


if __name__ == "__main__":
    main(server)
