"""Scenario 8: what one request costs, against opening a session per request (AG2's pattern).

AG2's ``MCPClientSessionManager.open_session`` spawns the stdio server, opens a
``ClientSession`` and initializes it for each query, then tears it all down. The server is the
SDK's MCPServer over stdio, as servers written in Python are.
"""

from __future__ import annotations

import time

from mcp import ClientSession
from mcp.client.stdio import stdio_client

import mcpvisor as mv
from bench.common import (
    MCP_SERVER,
    Config,
    Outcome,
    alternate,
    raw_params,
    series,
    stdio_spec,
    text_of,
    timed_calls,
)


async def _session_per_request(into: list[float]) -> None:
    t = time.perf_counter()
    async with (
        stdio_client(raw_params(MCP_SERVER)) as (read, write),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        result = await session.call_tool("add", {"a": 1, "b": 2})
    into.append(time.perf_counter() - t)
    assert text_of(result) == "3"


async def per_request(cfg: Config) -> Outcome:
    """8: cost per request: a supervised session vs a session opened per request."""
    ours: list[float] = []
    per: list[float] = []
    spec = mv.SupervisorSpec(servers=[stdio_spec("s", MCP_SERVER)])
    async with mv.open_supervisor(spec) as client:

        async def call() -> object:
            return await client.call_tool("s", "add", {"a": 1, "b": 2})

        assert text_of(await call()) == "3"
        await timed_calls(call, cfg.size(50, 5), [])

        async def side_ours() -> None:
            await timed_calls(call, cfg.size(50, 5), ours)

        async def side_per() -> None:
            await _session_per_request(per)

        await alternate(cfg.size(6, 1), [side_ours, side_per])
    a = series("mcpvisor call_tool", ours)
    b = series("session per request", per)
    r = b.median / a.median
    return Outcome(
        8,
        "cost per request vs a session per request",
        (a, b),
        "per-request session / ours (median)",
        r,
        ">= 200",
        r >= 200,
        (
            "session per request: stdio_client + ClientSession + initialize + call_tool + "
            "teardown, on bench/mcp_server.py (an MCPServer: ~1 s of imports per spawn)",
        ),
    )
