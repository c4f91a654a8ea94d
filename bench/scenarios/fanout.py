"""Scenario 10: event fan-out must not slow supervision, even with a stalled subscriber.

An in-process server that fails at every start, restarted at once forever, floods the bus
(two events per cycle). Meanwhile a healthy in-process server is restarted again and again;
its restart latency (``restart()`` until a call through it answers) is measured with no
subscriber, with 100 subscribers of which 99 read everything and one never reads, and with
100 that never read (the cost of publishing alone, without the readers' own work). The goal
(#13, restated): publishing to subscribers that never read costs <= 1.05 of none.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import trio
from mcp.server.mcpserver import MCPServer

import mcpvisor as mv
from bench.common import FAST_RESTART, NO_PROBES, Config, Outcome, alternate, series
from bench.mcp_server import make_server


@asynccontextmanager
async def _refuse(server: MCPServer) -> AsyncIterator[None]:
    raise RuntimeError("this server never starts")
    yield  # pragma: no cover


async def _drain(events: mv.Subscription, seen: list[int]) -> None:
    async for _ in events:
        seen[0] += 1


@asynccontextmanager
async def _subscribers(
    client: mv.SupervisorClient, count: int, readers: int, seen: list[int]
) -> AsyncIterator[None]:
    """``readers`` subscribers that read everything, and ``count - readers`` that never read."""
    async with trio.open_nursery() as nursery:
        subs = [await nursery.start(_hold, client, seen, i >= readers) for i in range(count)]
        try:
            yield
        finally:
            for cancel in subs:
                cancel.cancel()


async def _hold(
    client: mv.SupervisorClient,
    seen: list[int],
    stalled: bool,
    *,
    task_status: trio.TaskStatus[trio.CancelScope],
) -> None:
    with trio.CancelScope() as scope:
        async with client.subscribe() as events:
            task_status.started(scope)
            if stalled:
                await trio.sleep_forever()
            counter = [0]
            try:
                await _drain(events, counter)
            finally:
                seen[0] = max(seen[0], counter[0])


async def fanout(cfg: Config) -> Outcome:
    """10: restart latency with 100 subscribers (one stalled) during 10k events, vs none."""
    flood = mv.InProcessSpec(
        name="flood",
        server=MCPServer("flood", lifespan=_refuse),
        restart=FAST_RESTART,
        timeouts=NO_PROBES,
    )
    target = mv.InProcessSpec(name="target", server=make_server("target"), timeouts=NO_PROBES)
    quiet: list[float] = []
    busy: list[float] = []
    stalled: list[float] = []
    delivered = [0]
    subscribers = cfg.size(100, 5)
    per_round = cfg.size(25, 3)
    wanted = cfg.size(10_000, 50)
    async with mv.open_supervisor(mv.SupervisorSpec(servers=[target, flood])) as client:

        async def restarts(into: list[float]) -> None:
            for _ in range(per_round):
                t = time.perf_counter()
                await client.restart("target")
                await client.call_tool("target", "add", {"a": 1, "b": 2})
                into.append(time.perf_counter() - t)

        async def side_quiet() -> None:
            await restarts(quiet)

        async def side_busy() -> None:
            seen = [0]
            async with _subscribers(client, subscribers, subscribers - 1, seen):
                await restarts(busy)
            delivered[0] += seen[0]

        async def side_stalled() -> None:
            async with _subscribers(client, subscribers, 0, [0]):
                await restarts(stalled)

        await restarts([])
        rounds = 0
        while rounds < cfg.size(6, 3) or (delivered[0] < wanted and rounds < 150):
            # Three rounds at a time, so each side goes first as often as the others.
            await alternate(3, [side_quiet, side_busy, side_stalled])
            rounds += 3
        flood_restarts = client.status().servers["flood"].restarts
    a = series(f"restart, {subscribers} subscribers", busy)
    b = series("restart, no subscriber", quiet)
    c = series(f"restart, {subscribers} subscribers, none reading", stalled)
    r = c.median / b.median
    return Outcome(
        10,
        "event fan-out: 100 subscribers, one stalled",
        (a, b, c),
        "publishing to subscribers that never read / no subscriber (median)",
        r,
        "<= 1.05",
        r <= 1.05,
        (
            f"each reading subscriber received {delivered[0]:,} events while the restarts "
            f"with subscribers were measured; the flood server failed {flood_restarts:,} "
            "starts in all",
            "restart latency: `client.restart('target')` until a call_tool through it answers",
            f"with {subscribers - 1} subscribers reading every event and one stalled: "
            f"{a.median / b.median:.3f} of the latency without subscribers (the readers' own "
            "work on the one thread; #13 restated the goal as the cost of publishing alone)",
        ),
    )
