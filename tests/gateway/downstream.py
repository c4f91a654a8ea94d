"""An ``MCPServer`` over stdio for the gateway's tests: what a real downstream server offers.

``--marker PATH``: ``block`` appends ``cancelled <meta>`` to PATH when its call is cancelled,
so a test can see a gateway client's cancellation reach this process. Tools: ``add(a, b)``;
``slow(steps)`` reports progress ``steps`` times; ``block(tag)`` waits until cancelled;
``echo_meta()`` returns the request's ``_meta`` as JSON; ``grow()`` adds tool ``extra`` and
sends ``tools/list_changed``; ``secret()`` (filtered out by the tests' config). Also a
resource, a resource template, and a prompt whose ``topic`` argument completes.
"""

from __future__ import annotations

import argparse
import json

import anyio
from mcp.server.mcpserver import Context, MCPServer
from mcp_types import Completion, PromptReference

server = MCPServer("gateway-downstream")
_marker: str | None = None


@server.tool()
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


@server.tool()
async def slow(steps: int, ctx: Context) -> str:
    """Report progress ``steps`` times, then answer."""
    for i in range(steps):
        await ctx.report_progress(i + 1, steps, f"step {i + 1}")
    return "done"


@server.tool()
async def block(tag: str, ctx: Context) -> str:
    """Wait until cancelled; record the cancellation in the marker file."""
    await ctx.report_progress(0)
    try:
        await anyio.sleep_forever()
    finally:
        if _marker is not None:
            _record(f"cancelled {tag}")
    return "unreachable"


@server.tool()
async def gate(path: str, ctx: Context) -> str:
    """Report progress once, then answer when the file ``path`` exists."""
    await ctx.report_progress(0)
    # The release comes from another process, so there is no event to wait on: poll.
    while not await anyio.Path(path).exists():  # noqa: ASYNC110
        await anyio.sleep(0.05)
    return "released"


def _record(line: str) -> None:
    assert _marker is not None
    with open(_marker, "a", encoding="utf-8") as out:
        out.write(line + "\n")


@server.tool()
def echo_meta(ctx: Context) -> str:
    """The ``_meta`` this call arrived with, as JSON."""
    meta = ctx.request_context.meta or {}
    return json.dumps(dict(meta), sort_keys=True, default=str)


@server.tool()
async def grow(ctx: Context) -> str:
    """Add a tool named ``extra`` and tell the client."""

    def extra() -> str:
        """Added at run time."""
        return "extra"

    server.add_tool(extra, name="extra")
    # Each era hears of it its own way: a notification, or an event on subscriptions/listen.
    if ctx.request_context.protocol_version.startswith("2026"):
        await ctx.notify_tools_changed()
    else:
        await ctx.request_context.session.send_tool_list_changed()
    return "grown"


@server.tool()
def secret() -> str:
    """Hidden by the gateway's deny list."""
    return "secret"


@server.resource("note://hello")
def hello() -> str:
    """A fixed note."""
    return "hello world"


@server.resource("note://by-id/{ident}")
def by_id(ident: str) -> str:
    """A note per id."""
    return f"note {ident}"


@server.prompt()
def explain(topic: str) -> str:
    """Explain a topic."""
    return f"Explain {topic}."


@server.completion()
async def complete(ref: object, argument: object, context: object) -> Completion | None:
    if isinstance(ref, PromptReference) and ref.name == "explain":
        return Completion(values=["trio", "triangles"])
    return None


def main() -> None:
    global _marker
    parser = argparse.ArgumentParser()
    parser.add_argument("--marker")
    _marker = parser.parse_args().marker
    server.run()


if __name__ == "__main__":
    main()
