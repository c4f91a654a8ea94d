"""Scenarios 1 and 2: one call_tool at a time, through the handle vs a raw mcp.Client, vs a
bare ClientSession under Trio (the peers' floor), beside a bare Trio channel round trip.

The handle and the raw client talk to the same server program in the same protocol mode
(``auto``, as the worker uses); the bare session does the ``initialize`` handshake. All are
connected at the same time and take turns in rounds. The goal (#13) is that the handle costs at
most 1.5 channel round trips over the raw client, and at most 1.15 x the bare session. A second
raw client, identical to the first, shows how far apart two identical sides land in the same run.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable
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
    minimal_actor,
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
    cfg: Config, spec: mv.ServerSpec, servers: Callable[[], Any]
) -> dict[str, list[float]]:
    """Every side against its own server from ``servers()``, in rounds; samples by side."""
    samples: dict[str, list[float]] = {k: [] for k in _SIDES}
    args = {"a": 1, "b": 2}
    async with (
        mv.open_supervisor(mv.SupervisorSpec(servers=[spec])) as client,
        raw_clients([servers(), servers(), servers()]) as (direct, behind, again),
        minimal_actor(behind) as actor,
        bare_sessions([servers()]) as (session,),
        bare_sessions([servers()], negotiate=True) as (same_era,),
    ):
        calls: dict[str, Callable[[], Awaitable[Any]]] = {
            "ours": lambda: client.call_tool("s", "add", args),
            "raw": lambda: direct.call_tool("add", args),
            "again": lambda: again.call_tool("add", args),
            "actor": lambda: actor(args),
            "bare": lambda: session.call_tool("add", args),
            "same_era": lambda: same_era.call_tool("add", args),
        }
        for call in calls.values():
            assert text_of(await call()) == "3"
        warm = cfg.size(100, 5)
        for call in calls.values():
            await timed_calls(call, warm, [])
        n = cfg.size(200, 10)

        def side(key: str) -> Callable[[], Awaitable[None]]:
            async def run() -> None:
                await timed_calls(calls[key], n, samples[key])

            return run

        async def side_hop() -> None:
            samples["hop"].extend(await channel_round_trips(n))

        await alternate(cfg.size(20, 2), [*(side(k) for k in calls), side_hop])
    return samples


_SIDES = ("ours", "raw", "again", "actor", "bare", "same_era", "hop")


def _outcome(number: int, title: str, samples: dict[str, list[float]], where: str) -> Outcome:
    a, b = series("handle", samples["ours"]), series("raw mcp.Client", samples["raw"])
    f = series("raw mcp.Client behind a minimal actor", samples["actor"])
    c = series("bare ClientSession (trio, initialize)", samples["bare"])
    e = series("bare ClientSession (trio, the handle's era)", samples["same_era"])
    d = series("trio channel round trip", samples["hop"], "us")
    g = series("raw mcp.Client, a second one (A/A)", samples["again"])
    extra = (a.median - b.median) / d.median if d.median else math.inf
    floor = (f.median - b.median) / d.median if d.median else math.inf
    over_bare = ratio(a, e)
    return Outcome(
        number,
        title,
        (a, b, g, f, c, e, d),
        "(handle - raw) / channel round trip (medians)",
        extra,
        "<= 1.5, and handle / bare ClientSession (same era) <= 1.15",
        extra <= 1.5 and over_bare <= 1.15,
        (
            f"handle / raw {ratio(a, b):.3f}; handle / bare ClientSession in the handle's era "
            f"{over_bare:.3f}; handle / bare ClientSession after initialize (the peers' path) "
            f"{ratio(a, c):.3f}; raw mcp.Client / bare ClientSession, same era "
            f"{ratio(b, e):.3f}",
            f"the run's noise, two identical sides (A/A): second raw / raw {ratio(g, b):.3f}, "
            f"{(g.median - b.median) / d.median if d.median else math.inf:.2f} round trips",
            f"the least any actor costs: (raw behind a minimal actor - raw) / channel round trip "
            f"= {floor:.2f}; the handle over that floor: "
            f"{(a.median - f.median) / d.median if d.median else math.inf:.2f} round trips",
            f"{len(samples['ours'])} calls per side, in alternating rounds; {where}",
        ),
    )


async def inprocess(cfg: Config) -> Outcome:
    """1: call_tool latency against an in-process MCPServer."""
    server = make_server()
    spec = mv.InProcessSpec(name="s", server=server, timeouts=NO_PROBES)
    samples = await _compare(cfg, spec, lambda: server)
    return _outcome(
        1,
        "call_tool latency, in-process MCPServer",
        samples,
        "the same MCPServer object; the bare sessions talk to it over the SDK's memory streams",
    )


async def stdio(cfg: Config) -> Outcome:
    """2: call_tool latency against an MCPServer subprocess over stdio."""
    samples = await _compare(cfg, stdio_spec("s", MCP_SERVER), lambda: raw_params(MCP_SERVER))
    return _outcome(
        2,
        "call_tool latency, stdio MCPServer",
        samples,
        "seven processes of bench/mcp_server.py, one per side",
    )
