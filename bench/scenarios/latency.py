"""Scenarios 1 and 2: one call_tool at a time, through the handle vs through a raw mcp.Client.

Both sides talk to the same server program in the same protocol mode (``auto``, as the worker
uses), connected at the same time, and take turns in rounds.
"""

from __future__ import annotations

from typing import Any

import mcpvisor as mv
from bench.common import (
    MCP_SERVER,
    NO_PROBES,
    Config,
    Outcome,
    alternate,
    ratio,
    raw_clients,
    raw_params,
    series,
    stdio_spec,
    text_of,
    timed_calls,
)
from bench.mcp_server import make_server


async def _compare(
    cfg: Config, spec: mv.ServerSpec, raw_server: Any
) -> tuple[list[float], list[float]]:
    ours: list[float] = []
    raw: list[float] = []
    args = {"a": 1, "b": 2}
    async with (
        mv.open_supervisor(mv.SupervisorSpec(servers=[spec])) as client,
        raw_clients([raw_server]) as (direct,),
    ):

        async def ours_call() -> Any:
            return await client.call_tool("s", "add", args)

        async def raw_call() -> Any:
            return await direct.call_tool("add", args)

        assert text_of(await ours_call()) == text_of(await raw_call()) == "3"
        warm = cfg.size(100, 5)
        await timed_calls(ours_call, warm, [])
        await timed_calls(raw_call, warm, [])
        n = cfg.size(200, 10)

        async def side_ours() -> None:
            await timed_calls(ours_call, n, ours)

        async def side_raw() -> None:
            await timed_calls(raw_call, n, raw)

        await alternate(cfg.size(20, 2), [side_ours, side_raw])
    return ours, raw


async def inprocess(cfg: Config) -> Outcome:
    """1: call_tool latency against an in-process MCPServer."""
    server = make_server()
    ours, raw = await _compare(
        cfg, mv.InProcessSpec(name="s", server=server, timeouts=NO_PROBES), server
    )
    a, b = series("handle", ours), series("raw mcp.Client", raw)
    r = ratio(a, b)
    return Outcome(
        1,
        "call_tool latency, in-process MCPServer",
        (a, b),
        "handle / raw (median)",
        r,
        "<= 1.05",
        r <= 1.05,
        (f"{len(ours)} calls per side, in alternating rounds; same MCPServer object",),
    )


async def stdio(cfg: Config) -> Outcome:
    """2: call_tool latency against an MCPServer subprocess over stdio."""
    ours, raw = await _compare(cfg, stdio_spec("s", MCP_SERVER), raw_params(MCP_SERVER))
    a, b = series("handle", ours), series("raw mcp.Client", raw)
    r = ratio(a, b)
    return Outcome(
        2,
        "call_tool latency, stdio MCPServer",
        (a, b),
        "handle / raw (median)",
        r,
        "<= 1.02",
        r <= 1.02,
        (
            f"{len(ours)} calls per side, in alternating rounds; two processes of "
            "bench/mcp_server.py, one per side",
        ),
    )
