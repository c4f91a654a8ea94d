"""The article's AG2 research assistant, rebuilt: ``MCPClientSessionManager`` on mcpvisor.

The seed article (AG2, "Multi-MCP Session Management") routes each query to an MCP server by
name (``ArxivServer`` or ``WikipediaServer``), opens a session per query, and around it writes
a health check, retries with backoff, and a session pool. Here AG2's ``Agent`` and the
routing stay; each hand-written piece becomes a policy:

=========================================  ===============================================
the article's hand-written piece           the mcpvisor feature that replaces it
=========================================  ===============================================
``MCPConfig`` + ``get_server_config``       a ``SupervisorSpec``; ``UnknownServerError``
``open_session()`` per query                ``client.isolated(name)``: fresh, supervised,
                                            torn down after the block, bounded per server
on-demand sessions ("resource efficiency")  ``start="lazy"`` and ``idle_shutdown``
``create_toolkit(session=session)``         ``toolkit(session)`` / ``toolkit(client)``
``SessionPool`` keeping sessions by name    the supervised session, shared by every query
``execute_with_retry`` (3 tries, sleeps)    restart policy; a call waits for the restart
``check_server_health`` opening a session   ``client.status()``: no session, no round trip
``route_query`` by keywords                 the same function
=========================================  ===============================================

Both servers are the bundled ``notes`` server under two names; each starts on its first
query and stops after 300 s without one. ``python examples/ag2_research_assistant.py`` needs
a model configuration for AG2 (see ``main``).
"""

from __future__ import annotations

import asyncio
from typing import Any

from ag2 import Agent
from ag2.config import ModelConfig

import mcpvisor as mv
import mcpvisor.aio
from mcpvisor.adapters.ag2 import toolkit
from mcpvisor.demo import stdio_spec

RETRIES = mv.RestartPolicy(max_restarts=3, within=60, backoff=mv.Backoff(initial=1, max=10))


def servers() -> mv.SupervisorSpec:
    """The article's two servers, started on demand, stopped when idle, restarted on crash."""
    on_demand: dict[str, Any] = {"start": "lazy", "idle_shutdown": 300, "restart": RETRIES}
    return mv.SupervisorSpec(
        servers=[
            stdio_spec("arxiv", "notes", **on_demand),
            stdio_spec("wikipedia", "notes", **on_demand),
        ]
    )


def route(query: str) -> str:
    """The article's ``route_query``: pick a server by the words in the query."""
    words = query.lower()
    if any(w in words for w in ("arxiv", "paper", "research")):
        return "arxiv"
    if any(w in words for w in ("wikipedia", "wiki", "article")):
        return "wikipedia"
    return "arxiv"


def health(client: mcpvisor.aio.SupervisorClient) -> dict[str, str]:
    """The article's ``check_all_servers``, from the status snapshot: no session opened."""
    return {name: s.state.value for name, s in client.status().servers.items()}


async def ask(
    client: mcpvisor.aio.SupervisorClient,
    query: str,
    config: ModelConfig,
    *,
    isolated: bool = False,
) -> str:
    """Answer ``query`` with an agent holding the routed server's tools.

    ``isolated=True`` is the article's session per query (a fresh session, gone after the
    answer); otherwise the query uses the server's supervised session, shared (the pool).
    """
    server = route(query)
    prompt = f"You are an agent with access to {server} tools. Use them to answer queries."
    if isolated:
        async with client.isolated(server) as session:
            agent = Agent("mcp_agent", prompt, config=config, tools=[await toolkit(session)])
            reply = await agent.ask(query)
    else:
        tools = await toolkit(client, servers=[server])
        reply = await Agent("mcp_agent", prompt, config=config, tools=[tools]).ask(query)
    return str(reply.body)


async def main(config: ModelConfig) -> None:
    async with mcpvisor.aio.open_supervisor(servers()) as client:
        print(health(client))
        print(await ask(client, "Count the words in this research paper title", config))
        print(await ask(client, "Echo the wiki article name", config, isolated=True))
        print(health(client))


if __name__ == "__main__":
    from ag2.config import OpenAIConfig

    asyncio.run(main(OpenAIConfig(model="gpt-4.1-mini")))
