"""Scenario 7: the aggregated tool list of 20 stdio servers, as an agent asks for it every turn.

mcpvisor answers from caches kept fresh by ``list_changed``; the OpenAI Agents SDK (without
``cache_tools_list``) relists every server one after another on every agent turn.
"""

from __future__ import annotations

import mcpvisor as mv
from bench.common import (
    Config,
    Outcome,
    alternate,
    raw_clients,
    raw_params,
    series,
    stdio_spec,
    timed_calls,
)


async def listing(cfg: Config) -> Outcome:
    """7: aggregated list_tools over 20 stdio servers: cached vs relisting each in turn."""
    n = cfg.size(20, 3)
    spec = mv.SupervisorSpec(servers=[stdio_spec(f"s{i}") for i in range(n)])
    ours: list[float] = []
    relist: list[float] = []
    async with (
        mv.open_supervisor(spec) as client,
        raw_clients([raw_params() for _ in range(n)]) as direct,
    ):

        async def ours_list() -> object:
            tools = await client.list_tools()
            assert len(tools) == 2 * n
            return tools

        async def relist_all() -> object:
            tools = []
            for c in direct:
                tools += (await c.list_tools(cache_mode="bypass")).tools
            assert len(tools) == 2 * n
            return tools

        async def side_ours() -> None:
            await timed_calls(ours_list, cfg.size(500, 10), ours)

        async def side_relist() -> None:
            await timed_calls(relist_all, cfg.size(20, 2), relist)

        await alternate(cfg.size(10, 1), [side_ours, side_relist])
    a = series("mcpvisor list_tools (cached)", ours, "us")
    b = series(f"relist {n} servers in turn", relist)
    r = b.median / a.median
    return Outcome(
        7,
        f"aggregated list_tools over {n} stdio servers",
        (a, b),
        "relisting / ours (median)",
        r,
        ">= 100",
        r >= 100,
        (
            "relisting: `mcp.Client.list_tools(cache_mode='bypass')` on each server in turn, "
            "as the Agents SDK's `ClientSession.list_tools()` does on each agent turn",
            "servers: bench/raw_server.py, one process per server per side",
        ),
    )
