"""AG2 (1.x, the ``ag2`` package) on supervised servers: a ``Toolkit`` of supervised tools.

::

    from ag2 import Agent
    import mcpvisor.aio
    from mcpvisor.adapters.ag2 import toolkit

    async with mcpvisor.aio.open_supervisor("mcp.json") as client:
        agent = Agent("researcher", config=config, tools=[await toolkit(client)])
        reply = await agent.ask("Find papers about supervision trees")

AG2's own MCP toolkit opens a session per operation; here every call goes to the server's
supervised session (restarted after a crash, started lazily, stopped when idle, as its policy
says), or, with ``isolated=True``, to a fresh isolated session per call, torn down after it.
Tools are named ``server__tool``; ``allow`` / ``block`` map a server to tool names to keep or
drop. A call answers with an AG2 ``ToolResult`` holding the result's text, with
``metadata={"mcp_server", "mcp_tool", "is_error"}``; a server that is down, or a call its
crash interrupted, answers with mcpvisor's message (``is_error`` set) instead of a traceback,
and the run goes on. (The legacy ``autogen.tools.Toolkit`` line, ``ag2`` 0.x, shares the
``ag2`` distribution name with 1.x, so the two cannot be installed together.)
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from mcpvisor.adapters import missing_extra

try:
    from ag2 import Toolkit, ToolResult, tool
except ImportError as error:  # pragma: no cover - exercised in a subprocess
    raise missing_extra("ag2", "ag2", error) from None

from mcpvisor.adapters._common import MODEL_VISIBLE_ERRORS, offers_tools
from mcpvisor.aio import IsolatedSession
from mcpvisor.specs import qualify
from mcpvisor.supervisor import ServerState

if TYPE_CHECKING:
    from mcp_types import CallToolResult, Tool

    from mcpvisor.aio import SupervisorClient

__all__ = ["function_tool", "toolkit"]

_CONTEXT_ARGUMENT = "__ctx__"
"""The keyword AG2 adds to every tool call for its own context; not a tool argument."""


def _text(result: CallToolResult) -> str:
    parts = [
        block.text if block.type == "text" else block.model_dump_json(exclude_none=True)
        for block in result.content
    ]
    return "\n".join(parts)


def function_tool(
    source: SupervisorClient | IsolatedSession,
    server: str,
    mcp_tool: Tool,
    *,
    timeout: float | None = None,
    isolated: bool = False,
) -> Any:
    """One AG2 function tool calling ``mcp_tool`` of ``server`` through the supervisor.

    ``source`` is the supervisor's handle, or one isolated session (then every call goes to
    that session, as in AG2's ``create_toolkit(session=...)``).
    """
    metadata = {"mcp_server": server, "mcp_tool": mcp_tool.name}

    async def call(**arguments: Any) -> ToolResult:
        arguments.pop(_CONTEXT_ARGUMENT, None)
        try:
            if isinstance(source, IsolatedSession):
                result = await source.call_tool(mcp_tool.name, arguments, timeout=timeout)
            elif isolated:
                async with source.isolated(server) as session:
                    result = await session.call_tool(mcp_tool.name, arguments, timeout=timeout)
            else:
                result = await source.call_tool(server, mcp_tool.name, arguments, timeout=timeout)
        except MODEL_VISIBLE_ERRORS as error:
            return ToolResult(str(error), metadata={**metadata, "is_error": True})
        return ToolResult(_text(result), metadata={**metadata, "is_error": result.is_error})

    return tool(
        call,
        name=qualify(server, mcp_tool.name),
        description=mcp_tool.description or mcp_tool.title or mcp_tool.name,
        schema=dict(mcp_tool.input_schema),
    )


async def toolkit(
    source: SupervisorClient | IsolatedSession,
    servers: Iterable[str] | None = None,
    *,
    allow: Mapping[str, Iterable[str]] | None = None,
    block: Mapping[str, Iterable[str]] | None = None,
    include_unavailable: bool = False,
    timeout: float | None = None,
    isolated: bool = False,
    name: str = "mcpvisor",
) -> Toolkit:
    """An AG2 ``Toolkit`` of the tools of every server that serves or is coming back
    (restarting, lazy, idle: a call waits for it), or of ``servers``.

    Built from mcpvisor's catalog, without a round trip; build it again after a
    ``tools_changed`` event to pick up new tools. A lazy server named in ``servers`` that
    never started is started first, so its tools are known. ``source`` may also be an
    isolated session (``async with client.isolated(name) as session``): the toolkit then
    holds that session's tools, and its calls go to it.
    """
    wanted = set(servers) if servers is not None else None
    allowed = {s: set(names) for s, names in (allow or {}).items()}
    blocked = {s: set(names) for s, names in (block or {}).items()}
    if isinstance(source, IsolatedSession):
        entries = await source.list_tools()
    else:
        status = source.status().servers
        for server in sorted(wanted or ()):
            lazy = status.get(server)
            asleep = lazy is not None and lazy.wakeable and lazy.state is ServerState.STOPPED
            if asleep and not source.catalog(server).tools:
                await source.request(server, "probe", timeout=timeout)  # starts it
        entries = [
            e
            for e in await source.list_tools(include_unavailable=True)
            if include_unavailable or offers_tools(status.get(e.server))
        ]
    tools = []
    for entry in entries:
        if wanted is not None and entry.server not in wanted:
            continue
        if entry.server in allowed and entry.name not in allowed[entry.server]:
            continue
        if entry.name in blocked.get(entry.server, ()):
            continue
        tools.append(
            function_tool(source, entry.server, entry.tool, timeout=timeout, isolated=isolated)
        )
    return Toolkit(*tools, name=name)
