"""Scenarios 4 and 5: SIGKILL an idle stdio server; how soon is it noticed, how soon is it back.

The server is bench/raw_server.py under a policy that restarts at once (initial backoff 0).
Times run from ``os.kill`` to the event's arrival at a subscriber.
"""

from __future__ import annotations

import os
import signal
import time

from mcp import Client

import mcpvisor as mv
from bench.common import (
    FAST_RESTART,
    MCP_SERVER,
    RAW_SERVER,
    Config,
    Outcome,
    alternate,
    raw_params,
    series,
    stdio_spec,
)

NAME = "victim"


async def _kill_and_watch(
    client: mv.SupervisorClient, events: mv.Subscription, failed: list[float], back: list[float]
) -> None:
    """Kill the ACTIVE server once; append kill->FAILED and kill->ACTIVE to the lists."""
    pid = client.status().servers[NAME].pid
    assert pid is not None, "the server is not ACTIVE"
    t = time.perf_counter()
    os.kill(pid, signal.SIGKILL)
    async for event in events:
        if not isinstance(event, mv.LifecycleEvent) or event.server != NAME:
            continue
        if event.new is mv.ServerState.FAILED:
            failed.append(time.perf_counter() - t)
        elif event.new is mv.ServerState.ACTIVE:
            back.append(time.perf_counter() - t)
            return
    raise AssertionError("the event stream ended before the server came back")


async def _cold_start(path: str, into: list[float]) -> None:
    """The same server started alone by the raw SDK: spawn, handshake, tools/list."""
    t = time.perf_counter()
    async with Client(raw_params(path)) as client:
        await client.list_tools()
        into.append(time.perf_counter() - t)


async def _own_cold_start(client: mv.SupervisorClient, path: str, into: list[float]) -> None:
    """The same server started by mcpvisor itself: spawn, handshake, catalog, ACTIVE."""
    t = time.perf_counter()
    started = await client.add_server(stdio_spec("cold", path))
    into.append(time.perf_counter() - t)
    assert started.state is mv.ServerState.ACTIVE, started
    await client.remove_server("cold")


async def _run(
    rounds: int, with_cold_starts: bool, path: str = RAW_SERVER
) -> tuple[list[float], list[float], list[float], list[float]]:
    failed: list[float] = []
    back: list[float] = []
    cold: list[float] = []
    own: list[float] = []
    spec = mv.SupervisorSpec(servers=[stdio_spec(NAME, path, restart=FAST_RESTART)])
    async with mv.open_supervisor(spec) as client, client.subscribe() as events:
        await _kill_and_watch(client, events, [], [])

        async def kill() -> None:
            await _kill_and_watch(client, events, failed, back)

        async def cold_start() -> None:
            await _cold_start(path, cold)

        async def own_cold_start() -> None:
            await _own_cold_start(client, path, own)

        sides = [kill, cold_start, own_cold_start] if with_cold_starts else [kill]
        await alternate(rounds, sides)
    return failed, back, cold, own


async def detection(cfg: Config) -> Outcome:
    """4: from SIGKILL of an idle stdio server to the FAILED event at a subscriber."""
    failed, _, _, _ = await _run(cfg.size(40, 3), with_cold_starts=False)
    s = series("kill -> FAILED event", failed)
    return Outcome(
        4,
        "SIGKILL of an idle stdio server: time to FAILED",
        (s,),
        "p50 (ms)",
        s.median * 1e3,
        "<= 10 ms",
        s.median <= 0.010,
        (f"{len(failed)} kills of bench/raw_server.py, each after it was ACTIVE again",),
    )


async def recovery(cfg: Config) -> Outcome:
    """5: from SIGKILL to ACTIVE again (backoff 0), against the server's own cold start."""
    _, back, cold, own = await _run(cfg.size(40, 3), with_cold_starts=True)
    _, mcp_back, mcp_cold, _ = await _run(cfg.size(6, 1), with_cold_starts=True, path=MCP_SERVER)
    a = series("kill -> ACTIVE event", back)
    b = series("cold start alone (raw SDK)", cold)
    o = series("cold start alone (mcpvisor's add_server)", own)
    c = series("MCPServer: kill -> ACTIVE event", mcp_back)
    d = series("MCPServer: cold start alone (raw SDK)", mcp_cold)
    r = a.median / b.median
    return Outcome(
        5,
        "SIGKILL, then ACTIVE again (backoff 0)",
        (a, b, o, c, d),
        "recovery / cold start (median)",
        r,
        "<= 1.05",
        r <= 1.05,
        (
            "cold start: `async with mcp.Client(StdioServerParameters(...))` plus one "
            "tools/list (what the worker does before ACTIVE), taking turns with the kills",
            f"bench/raw_server.py (the figure): recovery costs "
            f"{(a.median - b.median) * 1e3:.1f} ms more than a cold start",
            f"recovery / mcpvisor's own cold start of the same server = "
            f"{a.median / o.median:.3f}: what the restart path adds to a start "
            f"(mcpvisor's start / the raw SDK's = {o.median / b.median:.3f}: the death-signal "
            "launcher, the safe environment, the catalog)",
            f"bench/mcp_server.py (an MCPServer): recovery / cold start = "
            f"{c.median / d.median:.3f}, {(c.median - d.median) * 1e3:.1f} ms more",
        ),
    )
