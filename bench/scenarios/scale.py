"""Scenario 9: 1000 in-process servers under one supervisor.

Three phases, each torn down before the next:

1. Startup time of 1000 InProcessSpecs, then handle latency under load: 50 callers, each
   making calls one after another to servers picked at random; again after ``gc.freeze()``;
   then the same load through 1000 raw ``mcp.Client`` s.
2. Memory, tracemalloc on: the 1000 MCPServer objects are built before tracing starts; the
   traced bytes still live once the supervisor has started (after a collection) are what
   supervising them costs, the SDK's sessions included.
3. The same measure for 1000 raw ``mcp.Client`` sessions to the same server objects, each held
   by its own task with its tool list kept, which is the least a host can do to hold them.

(2) minus (3), per server, is mcpvisor's own cost per idle worker: the worker's two tasks
(its own and one serving task), its mailbox, its slot, its lifecycle record, its catalog
(every listing, where the raw side keeps only its tools) and its subscription to the
in-process server's bus (which stands in for a ``subscriptions/listen`` stream to itself).
"""

from __future__ import annotations

import gc
import random
import time
import tracemalloc
from collections.abc import Awaitable, Callable
from typing import Any

import trio

import mcpvisor as mv
from bench.common import NO_PROBES, Config, Outcome, raw_clients_concurrently, series
from bench.mcp_server import make_server


def _traced() -> int:
    gc.collect()
    return tracemalloc.get_traced_memory()[0]


async def _load(
    call: Callable[[int], Awaitable[Any]], n: int, callers: int, calls: int
) -> list[float]:
    """``callers`` tasks, each making ``calls`` calls one after another to random servers."""
    latencies: list[float] = []
    rng = random.Random(9)

    async def caller() -> None:
        for _ in range(calls):
            i = rng.randrange(n)
            t = time.perf_counter()
            await call(i)
            latencies.append(time.perf_counter() - t)

    async with trio.open_nursery() as nursery:
        for _ in range(callers):
            nursery.start_soon(caller)
    return latencies


async def scale(cfg: Config) -> Outcome:
    """9: 1000 in-process servers: startup, memory per idle worker, latency under load."""
    n = cfg.size(1000, 20)
    servers = [make_server(f"s{i}") for i in range(n)]
    names = [f"s{i}" for i in range(n)]
    spec = mv.SupervisorSpec(
        servers=[
            mv.InProcessSpec(name=names[i], server=servers[i], timeouts=NO_PROBES) for i in range(n)
        ]
    )

    callers, calls = cfg.size(50, 5), cfg.size(100, 10)
    args = {"a": 1, "b": 2}
    t = time.perf_counter()
    async with mv.open_supervisor(spec) as client:
        startup = time.perf_counter() - t

        async def ours_call(i: int) -> Any:
            return await client.call_tool(names[i], "add", args)

        await _load(ours_call, n, callers, cfg.size(10, 2))
        latencies = await _load(ours_call, n, callers, calls)
        gc.collect()
        gc.freeze()
        try:
            frozen = await _load(ours_call, n, callers, calls)
        finally:
            gc.unfreeze()
    async with raw_clients_concurrently(servers) as direct:

        async def raw_call(i: int) -> Any:
            return await direct[i].call_tool("add", args)

        await _load(raw_call, n, callers, cfg.size(10, 2))
        raw_latencies = await _load(raw_call, n, callers, calls)

    gc.collect()
    tracemalloc.start()
    try:
        base = _traced()
        async with mv.open_supervisor(spec) as client:
            ours = _traced() - base
            assert len(client.status().servers) == n
        tracemalloc.stop()
        gc.collect()
        tracemalloc.start()
        base = _traced()
        kept: list[Any] = []
        async with raw_clients_concurrently(servers) as raw:
            for c in raw:
                kept.append((await c.list_tools()).tools)
            raw_bytes = _traced() - base
    finally:
        tracemalloc.stop()

    per_worker = (ours - raw_bytes) / n
    lat = series(f"handle latency, {callers} callers", latencies)
    lat_frozen = series("the same after gc.freeze()", frozen)
    lat_raw = series(f"raw mcp.Client latency, {callers} callers", raw_latencies)
    tail = lat.p99 / lat.median
    kib = per_worker / 1024
    met = kib <= 20 and tail <= 2
    return Outcome(
        9,
        f"scale: {n} in-process servers",
        (
            series("startup (open_supervisor)", [startup], "s"),
            lat,
            lat_frozen,
            lat_raw,
            series("supervised, per server (traced)", [ours / n], "KiB"),
            series("raw Client session, per server (traced)", [raw_bytes / n], "KiB"),
            series("mcpvisor's own, per idle worker", [per_worker], "KiB"),
        ),
        "KiB per worker; p99/p50",
        kib,
        "<= 20 KiB per worker; p99 <= 2x p50",
        met,
        (
            f"memory per idle worker {kib:.1f} KiB (goal <= 20, #13): "
            f"{'met' if kib <= 20 else 'not met'}",
            f"p99 / p50 latency under load = {tail:.2f} (goal <= 2): "
            f"{'met' if tail <= 2 else 'not met'}",
            f"p99 / p50: after gc.freeze() {lat_frozen.p99 / lat_frozen.median:.2f}; "
            f"raw clients under the same load {lat_raw.p99 / lat_raw.median:.2f}",
            f"startup of {n} servers: {startup:.2f} s ({startup / n * 1e3:.2f} ms per server)",
            "memory: tracemalloc, live bytes after a gc.collect(); the MCPServer objects were "
            "built before tracing; both sides list tools once and keep them",
        ),
    )
