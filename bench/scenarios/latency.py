"""Scenarios 1 and 2: one call_tool at a time, through the handle vs a raw mcp.Client, vs a
bare ClientSession under Trio (the peers' floor), beside a bare Trio channel round trip.

The handle and the raw client talk to the same server program in the same protocol mode
(``auto``, as the worker uses); the bare session does the ``initialize`` handshake. All are
connected at the same time and take turns in rounds. The goal (#13) is that the handle costs at
most 1.5 channel round trips over the raw client, and at most 1.15 x the bare session.
"""

from __future__ import annotations

import math
from typing import Any

import mcpvisor as mv
from bench.common import (
    MCP_SERVER,
    NO_PROBES,
    Config,
    Outcome,
    alternate,
    bare_sessions,
    channel_round_trips,
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
    cfg: Config, spec: mv.ServerSpec, raw_server: Any, bare_server: Any
) -> tuple[list[float], list[float], list[float], list[float]]:
    """Handle, raw ``mcp.Client``, bare ``ClientSession`` and channel round trips, in rounds."""
    ours: list[float] = []
    raw: list[float] = []
    bare: list[float] = []
    hop: list[float] = []
    args = {"a": 1, "b": 2}
    async with (
        mv.open_supervisor(mv.SupervisorSpec(servers=[spec])) as client,
        raw_clients([raw_server]) as (direct,),
        bare_sessions([bare_server]) as (session,),
    ):

        async def ours_call() -> Any:
            return await client.call_tool("s", "add", args)

        async def raw_call() -> Any:
            return await direct.call_tool("add", args)

        async def bare_call() -> Any:
            return await session.call_tool("add", args)

        assert text_of(await ours_call()) == text_of(await raw_call()) == "3"
        assert text_of(await bare_call()) == "3"
        warm = cfg.size(100, 5)
        await timed_calls(ours_call, warm, [])
        await timed_calls(raw_call, warm, [])
        await timed_calls(bare_call, warm, [])
        n = cfg.size(200, 10)

        async def side_ours() -> None:
            await timed_calls(ours_call, n, ours)

        async def side_raw() -> None:
            await timed_calls(raw_call, n, raw)

        async def side_bare() -> None:
            await timed_calls(bare_call, n, bare)

        async def side_hop() -> None:
            hop.extend(await channel_round_trips(n))

        await alternate(cfg.size(20, 2), [side_ours, side_raw, side_bare, side_hop])
    return ours, raw, bare, hop


def _outcome(number: int, title: str, samples: tuple[list[float], ...], where: str) -> Outcome:
    ours, raw, bare, hop = samples
    a, b = series("handle", ours), series("raw mcp.Client", raw)
    c, d = series("bare ClientSession (trio)", bare), series("trio channel round trip", hop, "us")
    extra = (a.median - b.median) / d.median if d.median else math.inf
    over_bare = ratio(a, c)
    return Outcome(
        number,
        title,
        (a, b, c, d),
        "(handle - raw) / channel round trip (medians)",
        extra,
        "<= 1.5, and handle / bare ClientSession <= 1.15",
        extra <= 1.5 and over_bare <= 1.15,
        (
            f"handle / raw {ratio(a, b):.3f}; handle / bare ClientSession {over_bare:.3f}; "
            f"raw mcp.Client / bare ClientSession {ratio(b, c):.3f}",
            f"{len(ours)} calls per side, in alternating rounds; {where}",
        ),
    )


async def inprocess(cfg: Config) -> Outcome:
    """1: call_tool latency against an in-process MCPServer."""
    server = make_server()
    spec = mv.InProcessSpec(name="s", server=server, timeouts=NO_PROBES)
    samples = await _compare(cfg, spec, server, server)
    return _outcome(
        1,
        "call_tool latency, in-process MCPServer",
        samples,
        "the same MCPServer object; the bare session talks to it over the SDK's memory streams",
    )


async def stdio(cfg: Config) -> Outcome:
    """2: call_tool latency against an MCPServer subprocess over stdio."""
    samples = await _compare(
        cfg, stdio_spec("s", MCP_SERVER), raw_params(MCP_SERVER), raw_params(MCP_SERVER)
    )
    return _outcome(
        2,
        "call_tool latency, stdio MCPServer",
        samples,
        "three processes of bench/mcp_server.py, one per side",
    )
