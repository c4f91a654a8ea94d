"""The OpenAI Agents SDK on supervised servers: ``agents.mcp.MCPServer`` backed by mcpvisor.

::

    from agents import Agent, Runner
    import mcpvisor.aio
    from mcpvisor.adapters.openai_agents import mcp_servers

    async with mcpvisor.aio.open_supervisor("mcp.json") as client:
        agent = Agent(name="assistant", mcp_servers=mcp_servers(client))
        result = await Runner.run(agent, "What is in /data/report.txt?")

Each :class:`SupervisedMCPServer` is one supervised server (tools keep their names) or a set
of them (tools are named ``server__tool``). Tools come from mcpvisor's catalog, kept fresh by
``list_changed``, so listing them every turn costs no round trip. ``connect`` and ``cleanup``
do nothing: the supervisor owns the connections, notices crashes and restarts servers, so
there is no ``reconnect()`` to call. A call to a server that is down, or interrupted by its
crash, comes back to the model as an ``is_error`` tool result saying so, and the run goes on;
the next turn's call waits for the restart. The SDK's ``tool_filter``, ``require_approval``,
``failure_error_function``, ``tool_meta_resolver`` and guardrails work as on its own servers.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from mcpvisor.adapters import missing_extra

try:
    from agents.mcp import MCPServer, ToolFilter, ToolFilterContext
except ImportError as error:  # pragma: no cover - exercised in a subprocess
    raise missing_extra("openai_agents", "openai-agents", error) from None

from mcp_types import (
    CallToolResult,
    GetPromptResult,
    ListPromptsResult,
    ListResourcesResult,
    ListResourceTemplatesResult,
    Prompt,
    ReadResourceResult,
    Tool,
)

from mcpvisor.adapters._common import MODEL_VISIBLE_ERRORS, error_result, offers_tools
from mcpvisor.specs import qualify, split_qualified
from mcpvisor.supervisor import UnknownServerError, UnknownToolError

if TYPE_CHECKING:
    from agents import AgentBase, RunContextWrapper

    from mcpvisor.aio import SupervisorClient

__all__ = ["SupervisedMCPServer", "mcp_servers"]


class SupervisedMCPServer(MCPServer):
    """An Agents SDK MCP server whose tools, prompts and resources are mcpvisor's.

    ``servers`` is one supervised server's name (its tools keep their names) or a sequence
    of names (tools, prompts are named ``server__name``); ``name`` defaults to the server's
    name (or the names joined by ``+``). ``timeout`` bounds each call, including the wait for
    a restarting server (default: the server's ``timeouts.request``). ``tool_filter`` is the
    SDK's (a static allow/block dict or a callable); every other keyword goes to
    ``MCPServer.__init__`` (``require_approval``, ``failure_error_function``, guardrails...).
    """

    def __init__(
        self,
        client: SupervisorClient,
        servers: str | Sequence[str],
        *,
        name: str | None = None,
        tool_filter: ToolFilter = None,
        timeout: float | None = None,
        **options: Any,
    ) -> None:
        super().__init__(**options)
        self._client = client
        self._single = isinstance(servers, str)
        self._servers = (servers,) if isinstance(servers, str) else tuple(servers)
        if not self._servers:
            raise ValueError("servers: name at least one supervised server")
        self._name = name or "+".join(self._servers)
        self.tool_filter = tool_filter
        self._timeout = timeout

    @property
    def name(self) -> str:
        """The name the SDK shows for this server (and prefixes its tools with, if asked)."""
        return self._name

    async def connect(self) -> None:
        """Check that every server is supervised; the supervisor owns the connections."""
        known = self._client.status().servers
        for server in self._servers:
            if server not in known:
                raise UnknownServerError(server, known)

    async def cleanup(self) -> None:
        """Nothing to close: the servers stay supervised until ``open_supervisor`` exits."""

    # ---- tools ------------------------------------------------------------------------

    def _tools(self) -> list[Tool]:
        status = self._client.status().servers
        tools: list[Tool] = []
        for server in self._servers:
            if not offers_tools(status.get(server)):
                continue
            for tool in self._client.catalog(server).tools:
                if self._single:
                    tools.append(tool)
                else:
                    tools.append(tool.model_copy(update={"name": qualify(server, tool.name)}))
        return tools

    @property
    def cached_tools(self) -> list[Tool] | None:
        """The tools as of now, from the supervisor's catalog (never stale by a list_changed)."""
        return self._tools()

    async def list_tools(
        self,
        run_context: RunContextWrapper[Any] | None = None,
        agent: AgentBase | None = None,
    ) -> list[Tool]:
        """Tools of the servers that serve or are coming back, after ``tool_filter``."""
        tools = self._tools()
        selected = self.tool_filter
        if selected is None:
            return tools
        if isinstance(selected, dict):
            return [t for t in tools if self._statically_allowed(t.name)]
        if run_context is None or agent is None:
            raise ValueError("a callable tool_filter needs run_context and agent")
        context = ToolFilterContext(run_context=run_context, agent=agent, server_name=self.name)
        kept = []
        for tool in tools:
            verdict = selected(context, tool)
            if inspect.isawaitable(verdict):
                verdict = await verdict
            if verdict:
                kept.append(tool)
        return kept

    def _statically_allowed(self, name: str) -> bool:
        """Whether a dict ``tool_filter`` (or none) lets the tool through; a callable one
        needs the run's context, so here it lets everything through."""
        selected = self.tool_filter
        if not isinstance(selected, dict):
            return True
        allowed = selected.get("allowed_tool_names")
        blocked = selected.get("blocked_tool_names") or ()
        return (allowed is None or name in allowed) and name not in blocked

    def _route(self, name: str) -> tuple[str, str]:
        if self._single:
            return self._servers[0], name
        parts = split_qualified(name)
        if parts is None or parts[0] not in self._servers:
            # Suggest only what the model may be offered, never a filtered-out tool.
            known = [t.name for t in self._tools() if self._statically_allowed(t.name)]
            raise UnknownToolError(self._name, name, known)
        return parts

    async def call_tool(
        self,
        tool_name: str,
        arguments: dict[str, Any] | None,
        meta: dict[str, Any] | None = None,
    ) -> CallToolResult:
        """Call a tool through the supervisor; mcpvisor's errors become ``is_error`` results.

        A server restarting after a crash is waited for within ``timeout``; one that is down
        for good, a call interrupted by a crash, or an unknown tool tells the model why.
        The server's own JSON-RPC errors (``MCPError``) go to the SDK's failure handling.
        """
        try:
            server, tool = self._route(tool_name)
            return await self._client.call_tool(
                server, tool, arguments or {}, meta=meta, timeout=self._timeout
            )
        except MODEL_VISIBLE_ERRORS as error:
            return error_result(error)

    # ---- prompts and resources -----------------------------------------------------------

    async def list_prompts(self) -> ListPromptsResult:
        """The servers' prompts, from the catalog."""
        prompts: list[Prompt] = [
            p if self._single else p.model_copy(update={"name": qualify(server, p.name)})
            for server in self._servers
            for p in self._client.catalog(server).prompts
        ]
        return ListPromptsResult(prompts=prompts)

    async def get_prompt(
        self, name: str, arguments: dict[str, Any] | None = None
    ) -> GetPromptResult:
        """Render a prompt on its server."""
        server, prompt = self._route(name)
        return await self._client.get_prompt(
            server, prompt, {k: str(v) for k, v in (arguments or {}).items()}, timeout=self._timeout
        )

    async def list_resources(self, cursor: str | None = None) -> ListResourcesResult:
        """The servers' resources, from the catalog (one page: the catalog holds them all)."""
        return ListResourcesResult(
            resources=[r for s in self._servers for r in self._client.catalog(s).resources]
        )

    async def list_resource_templates(
        self, cursor: str | None = None
    ) -> ListResourceTemplatesResult:
        """The servers' resource templates, from the catalog."""
        return ListResourceTemplatesResult(
            resource_templates=[
                t for s in self._servers for t in self._client.catalog(s).resource_templates
            ]
        )

    async def read_resource(self, uri: str) -> ReadResourceResult:
        """Read ``uri`` from the server that lists it (the first server if none does)."""
        owner = next(
            (
                s
                for s in self._servers
                if any(str(r.uri) == uri for r in self._client.catalog(s).resources)
            ),
            self._servers[0],
        )
        return await self._client.read_resource(owner, uri, timeout=self._timeout)


def mcp_servers(
    client: SupervisorClient,
    names: Sequence[str] | None = None,
    **options: Any,
) -> list[SupervisedMCPServer]:
    """One :class:`SupervisedMCPServer` per supervised server (``names``, default all).

    ``options`` go to every one of them (``timeout``, ``tool_filter``, ``require_approval``...).
    Isolated sessions are never included.
    """
    status = client.status().servers
    chosen = names if names is not None else [n for n, s in status.items() if s.isolated_of is None]
    return [SupervisedMCPServer(client, name, **options) for name in chosen]
