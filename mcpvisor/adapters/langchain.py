"""LangChain tools on supervised servers: ``StructuredTool`` s built on langchain-core alone.

::

    import mcpvisor.aio
    from mcpvisor.adapters.langchain import structured_tools

    async with mcpvisor.aio.open_supervisor("mcp.json") as client:
        tools = await structured_tools(client)
        agent = create_agent(model, tools)

(langchain-mcp-adapters pins ``mcp<2`` and cannot be installed next to mcpvisor, so this
builds the tools directly.) Each tool is named ``server__tool``, takes the server's JSON
schema as its ``args_schema``, and answers with ``response_format="content_and_artifact"``:
the content is the result's text (or its content blocks when there is more than text), the
artifact the whole ``CallToolResult``. A result with ``is_error`` raises ``ToolException``,
and so do mcpvisor's errors (the server is down, a crash interrupted the call); with
``handle_tool_error=True`` (the default here) LangChain hands their message to the model as
an error ``ToolMessage`` and the agent goes on, while mcpvisor restarts the server.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from mcpvisor.adapters import missing_extra

try:
    from langchain_core.tools import StructuredTool, ToolException
except ImportError as error:  # pragma: no cover - exercised in a subprocess
    raise missing_extra("langchain", "langchain", error) from None

from mcp_types import CallToolResult  # at run time: LangChain reads the tool's annotations

from mcpvisor.adapters._common import MODEL_VISIBLE_ERRORS, offers_tools
from mcpvisor.specs import qualify

if TYPE_CHECKING:
    from mcp_types import Tool

    from mcpvisor.aio import SupervisorClient

__all__ = ["structured_tool", "structured_tools"]


def _content(result: CallToolResult) -> str | list[str | dict[str, Any]]:
    blocks = result.content
    if all(block.type == "text" for block in blocks):
        return "\n".join(block.text for block in blocks)  # type: ignore[union-attr]
    return [block.model_dump(mode="json", by_alias=True, exclude_none=True) for block in blocks]


def structured_tool(
    client: SupervisorClient,
    server: str,
    tool: Tool,
    *,
    timeout: float | None = None,
    handle_tool_error: bool | str | Callable[[ToolException], str] = True,
) -> StructuredTool:
    """One LangChain tool calling ``tool`` of ``server`` through the supervisor."""

    async def call(**arguments: Any) -> tuple[str | list[str | dict[str, Any]], CallToolResult]:
        try:
            result = await client.call_tool(server, tool.name, arguments, timeout=timeout)
        except MODEL_VISIBLE_ERRORS as error:
            raise ToolException(str(error)) from error
        if result.is_error:
            raise ToolException(_content(result))
        return _content(result), result

    return StructuredTool(
        name=qualify(server, tool.name),
        description=tool.description or tool.title or tool.name,
        args_schema=dict(tool.input_schema),
        coroutine=call,
        response_format="content_and_artifact",
        handle_tool_error=handle_tool_error,
        metadata={"mcp_server": server, "mcp_tool": tool.name},
    )


async def structured_tools(
    client: SupervisorClient,
    servers: Iterable[str] | None = None,
    *,
    allow: Mapping[str, Iterable[str]] | None = None,
    block: Mapping[str, Iterable[str]] | None = None,
    include_unavailable: bool = False,
    timeout: float | None = None,
    handle_tool_error: bool | str | Callable[[ToolException], str] = True,
) -> list[StructuredTool]:
    """Tools of every server that serves or is coming back (restarting, lazy, idle: a call
    waits for it), or of ``servers``, from mcpvisor's catalog.

    ``allow`` / ``block`` map a server to the tool names to keep / drop. Build the list again
    after a ``tools_changed`` event to pick up a server's new tools.
    """
    wanted = set(servers) if servers is not None else None
    allowed = {s: set(names) for s, names in (allow or {}).items()}
    blocked = {s: set(names) for s, names in (block or {}).items()}
    status = client.status().servers
    out: list[StructuredTool] = []
    for entry in await client.list_tools(include_unavailable=True):
        if not (include_unavailable or offers_tools(status.get(entry.server))):
            continue
        if wanted is not None and entry.server not in wanted:
            continue
        if entry.server in allowed and entry.name not in allowed[entry.server]:
            continue
        if entry.name in blocked.get(entry.server, ()):
            continue
        out.append(
            structured_tool(
                client,
                entry.server,
                entry.tool,
                timeout=timeout,
                handle_tool_error=handle_tool_error,
            )
        )
    return out
