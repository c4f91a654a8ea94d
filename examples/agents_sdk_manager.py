"""The article's ``MCPServerManager`` service, rebuilt: the OpenAI Agents SDK on mcpvisor.

The seed article (callsphere.ai, "MCPServerManager: Orchestrating Multiple MCP Servers") runs
an enterprise assistant on four MCP servers behind FastAPI. It tracks ``active_servers`` and
``failed_servers``, drops failed servers by hand, runs a ``ResilientMCPManager`` that calls
``server.connect()`` every 30 s, and asks for criticality, health endpoints and lifecycle
logs. Here the agent, its instructions and the endpoints stay; mcpvisor does the rest:

==========================================  ===============================================
the article's hand-written piece            the mcpvisor feature that replaces it
==========================================  ===============================================
``MCPServerManager``, ``async with``         ``mcpvisor.aio.open_supervisor`` in the lifespan
``active_servers`` / ``failed_servers``      ``client.status().active`` / ``.failed``
``ResilientMCPManager`` reconnect loop       restart policies: crash seen at once, backoff
``retry_counts`` / ``max_retries``           ``RestartPolicy(max_restarts, within)``, DROPPED
``manager.drop_failed_servers()``            ``client.drop_failed_servers()`` (an endpoint)
criticality, "fail fast if essential"       ``required=True``; ``/health/mcp`` 503 without it
``/health/mcp`` from the two lists           ``client.status().to_dict()``: states, restarts
"log every lifecycle event"                 ``client.subscribe()``: transitions and causes
``adaptive_instructions``                    the same function, reading the snapshot
``mcp_servers=[filesystem, ...]``            ``mcp_servers(client)``: one per server
==========================================  ===============================================

``files`` is critical (required); ``database`` and ``search`` are optional; ``business`` is a
server that never starts, so it is FAILED, backing off for 30 s and more, until its budget is
spent or someone drops it. Run it
with ``python examples/agents_sdk_manager.py`` (needs ``OPENAI_API_KEY`` for the default
model) and try ``curl localhost:8080/health/mcp``.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from agents import Agent, Model, RunConfig, RunContextWrapper, Runner
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

import mcpvisor as mv
import mcpvisor.aio
from mcpvisor.adapters.openai_agents import mcp_servers
from mcpvisor.demo import broken_spec, stdio_spec

log = logging.getLogger("assistant.mcp")


def services() -> mv.SupervisorSpec:
    """The four servers of the article: one critical, two optional, one that never starts."""
    slow = mv.RestartPolicy(max_restarts=5, within=600, backoff=mv.Backoff(initial=30, max=300))
    return mv.SupervisorSpec(
        servers=[
            stdio_spec("files", "notes", required=True),
            stdio_spec("database", "notes"),
            stdio_spec("search", "notes"),
            broken_spec("business", restart=slow),
        ]
    )


def adaptive_instructions(client: mcpvisor.aio.SupervisorClient) -> Any:
    """The article's dynamic instructions, from the status snapshot."""

    def instructions(run_context: RunContextWrapper[Any], agent: Agent[Any]) -> str:
        active = set(client.status().active)
        text = "You are an enterprise assistant."
        if "database" not in active:
            text += " The database server is unavailable: say you cannot look up records now."
        if "search" not in active:
            text += " The search server is offline: answer from what you know."
        return text

    return instructions


async def log_lifecycle(client: mcpvisor.aio.SupervisorClient) -> None:
    """Log every lifecycle event, with its cause, as the article's best practice 6 asks."""
    async with client.subscribe() as events:
        async for event in events:
            if isinstance(event, mv.EventsLost):
                log.warning("mcp.events_lost count=%d", event.count)
                continue
            log.info(
                "mcp.%s server=%s %s->%s reason=%s attempt=%s cause=%s",
                event.kind,
                event.server,
                event.old.value if event.old else None,
                event.new.value if event.new else None,
                event.reason,
                event.attempt,
                event.cause,
            )


class Chat(BaseModel):
    """The body of ``POST /chat``."""

    message: str


def make_app(spec: mv.SupervisorSpec, model: str | Model = "gpt-4.1-mini") -> FastAPI:
    """The assistant service; ``model`` is the Agents SDK model (a name or a ``Model``)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with mcpvisor.aio.open_supervisor(spec) as client:
            logger = asyncio.create_task(log_lifecycle(client))
            app.state.mcp = client
            app.state.agent = Agent(
                name="Enterprise Assistant",
                instructions=adaptive_instructions(client),
                model=model,
                mcp_servers=mcp_servers(client, timeout=30),
                # Several servers offer the same tool names: the SDK prefixes them.
                mcp_config={"include_server_in_tool_names": True},
            )
            try:
                yield
            finally:
                logger.cancel()
                await asyncio.gather(logger, return_exceptions=True)

    app = FastAPI(title="Enterprise Assistant", lifespan=lifespan)

    def mcp(request: Request) -> mcpvisor.aio.SupervisorClient:
        client: mcpvisor.aio.SupervisorClient = request.app.state.mcp
        return client

    @app.get("/health/mcp")
    async def health(request: Request) -> JSONResponse:
        status = mcp(request).status()
        return JSONResponse(
            status.to_dict(), status_code=503 if status.health == "unavailable" else 200
        )

    @app.post("/mcp/drop-failed")
    async def drop_failed(request: Request) -> dict[str, list[str]]:
        return {"dropped": await mcp(request).drop_failed_servers()}

    @app.post("/chat")
    async def chat(body: Chat, request: Request) -> JSONResponse:
        status = mcp(request).status()
        if status.health == "unavailable":
            return JSONResponse({"error": "the critical MCP servers are down"}, status_code=503)
        result = await Runner.run(request.app.state.agent, body.message, run_config=RUN)
        return JSONResponse({"response": result.final_output, "servers_used": status.active})

    return app


RUN = RunConfig(workflow_name="enterprise assistant")


def main(argv: list[str] | None = None) -> None:
    import uvicorn

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--model", default="gpt-4.1-mini")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    uvicorn.run(make_app(services(), args.model), host="127.0.0.1", port=args.port)


if __name__ == "__main__":
    main()
