"""Scenario 13: one call_tool at a time from asyncio, through ``mcpvisor.aio`` vs a raw Client.

The raw side is the SDK's ``mcp.Client`` driven from asyncio (anyio on its asyncio backend),
which is what an asyncio host uses without mcpvisor; ours crosses the portal to the Trio
thread and back on every call (a third series: a Trio guest run on the same loop). Same
server program, all connected at once, taking turns in rounds. The harness runs scenarios
under Trio, so this one runs its asyncio program in a worker thread.
"""

from __future__ import annotations

import asyncio
from typing import Any

import trio
from mcp import Client

import mcpvisor as mv
import mcpvisor.aio
from bench.common import (
    MCP_SERVER,
    Config,
    Outcome,
    alternate,
    ratio,
    raw_params,
    series,
    stdio_spec,
    text_of,
    timed_calls,
)


async def _compare(cfg: Config) -> tuple[list[float], list[float], list[float]]:
    ours: list[float] = []
    guest: list[float] = []
    raw: list[float] = []
    args = {"a": 1, "b": 2}
    spec = mv.SupervisorSpec(servers=[stdio_spec("s", MCP_SERVER)])
    async with (
        mcpvisor.aio.open_supervisor(spec) as client,
        mcpvisor.aio.open_supervisor(spec, runner="guest") as guest_client,
        Client(raw_params(MCP_SERVER)) as direct,
    ):

        async def ours_call() -> Any:
            return await client.call_tool("s", "add", args)

        async def guest_call() -> Any:
            return await guest_client.call_tool("s", "add", args)

        async def raw_call() -> Any:
            return await direct.call_tool("add", args)

        assert text_of(await ours_call()) == text_of(await raw_call()) == "3"
        assert text_of(await guest_call()) == "3"
        warm = cfg.size(100, 5)
        for call in (ours_call, guest_call, raw_call):
            await timed_calls(call, warm, [])
        n = cfg.size(200, 10)

        async def side_ours() -> None:
            await timed_calls(ours_call, n, ours)

        async def side_guest() -> None:
            await timed_calls(guest_call, n, guest)

        async def side_raw() -> None:
            await timed_calls(raw_call, n, raw)

        await alternate(cfg.size(20, 2), [side_ours, side_guest, side_raw])
    return ours, guest, raw


async def latency(cfg: Config) -> Outcome:
    """13: call_tool latency from asyncio, stdio MCPServer: mcpvisor.aio vs raw mcp.Client."""
    ours, guest, raw = await trio.to_thread.run_sync(lambda: asyncio.run(_compare(cfg)))
    a, b = series("mcpvisor.aio (thread)", ours), series("raw mcp.Client on asyncio", raw)
    g = series("mcpvisor.aio (guest)", guest)
    r = ratio(a, b)
    return Outcome(
        13,
        "call_tool latency from asyncio, stdio MCPServer",
        (a, g, b),
        "aio thread / raw (median)",
        r,
        "<= 1.10",
        r <= 1.10,
        (
            f"{len(ours)} calls per side, in alternating rounds, under asyncio.run; three "
            "processes of bench/mcp_server.py, one per side; the figure is for the default "
            "runner (the supervisor in its own Trio thread)",
            f"guest runner / raw (median) = {ratio(g, b):.3f}",
        ),
    )
