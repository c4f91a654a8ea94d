"""Scenario 3: 1000 concurrent calls spread over 20 servers, in-process and over stdio.

The reference drives 20 raw ``mcp.Client`` s directly, connected to the same servers (the same
MCPServer objects in-process; a second set of processes of the same raw server over stdio).
Bare ``ClientSession`` s, and bare sessions behind a minimal actor (the floor of any hop in a
burst), get sets of their own.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from contextlib import nullcontext
from typing import Any

import attrs
import trio

import mcpvisor as mv
from bench.common import (
    NO_PROBES,
    Config,
    FullCollections,
    Outcome,
    Series,
    alternate,
    bare_sessions,
    minimal_actors,
    raw_clients,
    raw_params,
    series,
    stdio_spec,
    text_of,
)
from bench.mcp_server import make_server

Call = Callable[[int], Awaitable[Any]]


async def _burst(
    calls: int, servers: int, call: Call, into: list[float], gcs: FullCollections | None = None
) -> None:
    """``calls`` calls at once, round-robin over ``servers``; appends calls per second."""
    t = time.perf_counter()
    with gcs.watch() if gcs is not None else nullcontext():
        async with trio.open_nursery() as nursery:
            for i in range(calls):
                nursery.start_soon(call, i % servers)
    into.append(calls / (time.perf_counter() - t))


@attrs.frozen
class _Sides:
    ours: Series
    raw: Series
    bare: Series
    actor: Series
    """A bare ``ClientSession`` per server behind a minimal actor: the floor of any hop."""
    collections: str
    """Where the full garbage collections fell, one line for the notes."""


async def _compare(
    cfg: Config,
    specs: list[mv.ServerSpec],
    raw_servers: list[Any],
    bare_servers: list[Any],
    actor_servers: list[Any],
    tool: str,
) -> _Sides:
    calls = cfg.size(1000, 40)
    n = len(specs)
    names = [s.name for s in specs]
    args = {"a": 1, "b": 2} if tool == "add" else {"text": "3"}
    ours: list[float] = []
    raw: list[float] = []
    bare: list[float] = []
    actor: list[float] = []
    gcs = {side: FullCollections() for side in ("handle", "raw", "bare", "actor")}
    tasks = specs[0].max_concurrency
    async with (
        mv.open_supervisor(mv.SupervisorSpec(servers=specs)) as client,
        raw_clients(raw_servers) as direct,
        bare_sessions(bare_servers) as sessions,
        bare_sessions(actor_servers) as actor_sessions,
        minimal_actors(actor_sessions, tool, args, tasks) as actor_call,
    ):

        async def ours_call(i: int) -> Any:
            return await client.call_tool(names[i], tool, args)

        async def raw_call(i: int) -> Any:
            return await direct[i].call_tool(tool, args)

        async def bare_call(i: int) -> Any:
            return await sessions[i].call_tool(tool, args)

        assert text_of(await ours_call(0)) == text_of(await raw_call(0)) == "3"
        assert text_of(await bare_call(0)) == text_of(await actor_call(0)) == "3"
        await _burst(calls, n, ours_call, [])
        await _burst(calls, n, raw_call, [])
        await _burst(calls, n, bare_call, [])
        await _burst(calls, n, actor_call, [])

        async def side_ours() -> None:
            await _burst(calls, n, ours_call, ours, gcs["handle"])

        async def side_raw() -> None:
            await _burst(calls, n, raw_call, raw, gcs["raw"])

        async def side_bare() -> None:
            await _burst(calls, n, bare_call, bare, gcs["bare"])

        async def side_actor() -> None:
            await _burst(calls, n, actor_call, actor, gcs["actor"])

        rounds = cfg.size(8, 1)
        await alternate(rounds, [side_ours, side_raw, side_bare, side_actor])
    return _Sides(
        series("handle", ours, "/s"),
        series("raw mcp.Client", raw, "/s"),
        series("bare ClientSession (trio)", bare, "/s"),
        series(f"bare ClientSession behind a minimal actor ({tasks} tasks)", actor, "/s"),
        ", ".join(gc.describe(side, calls * rounds) for side, gc in gcs.items()),
    )


async def concurrent(cfg: Config) -> Outcome:
    """3: throughput of 1000 concurrent calls over 20 servers (in-process, then stdio)."""
    n = cfg.size(20, 4)
    servers = [make_server(f"s{i}") for i in range(n)]
    specs: list[mv.ServerSpec] = [
        mv.InProcessSpec(name=f"s{i}", server=servers[i], timeouts=NO_PROBES) for i in range(n)
    ]
    inproc = await _compare(cfg, specs, servers, servers, servers, "add")
    in_ours, in_raw, in_bare = inproc.ours, inproc.raw, inproc.bare
    stdio_specs: list[mv.ServerSpec] = [stdio_spec(f"s{i}") for i in range(n)]
    raw, bare, actor = ([raw_params() for _ in range(n)] for _ in range(3))
    stdio = await _compare(cfg, stdio_specs, raw, bare, actor, "echo")
    io_ours, io_raw, io_bare = stdio.ours, stdio.raw, stdio.bare
    in_ratio = in_ours.median / in_raw.median
    io_ratio = io_ours.median / io_raw.median
    worst = min(in_ratio, io_ratio)
    in_bare_ratio = in_ours.median / in_bare.median
    io_bare_ratio = io_ours.median / io_bare.median
    worst_bare = min(in_bare_ratio, io_bare_ratio)
    return Outcome(
        3,
        "1000 concurrent calls over 20 servers",
        (
            Series(f"in-process: {in_ours.label}", in_ours.samples, "/s"),
            Series(f"in-process: {in_raw.label}", in_raw.samples, "/s"),
            Series(f"in-process: {in_bare.label}", in_bare.samples, "/s"),
            Series(f"in-process: {inproc.actor.label}", inproc.actor.samples, "/s"),
            Series(f"stdio: {io_ours.label}", io_ours.samples, "/s"),
            Series(f"stdio: {io_raw.label}", io_raw.samples, "/s"),
            Series(f"stdio: {io_bare.label}", io_bare.samples, "/s"),
            Series(f"stdio: {stdio.actor.label}", stdio.actor.samples, "/s"),
        ),
        "handle / raw throughput (worse of the two)",
        worst,
        ">= 0.90, and handle / bare ClientSession >= 0.85",
        worst >= 0.90 and worst_bare >= 0.85,
        (
            f"handle / raw: in-process {in_ratio:.3f}, stdio {io_ratio:.3f}",
            f"handle / bare ClientSession: in-process {in_bare_ratio:.3f}, "
            f"stdio {io_bare_ratio:.3f}",
            "the least any actor costs, minimal actor / bare ClientSession: in-process "
            f"{inproc.actor.median / in_bare.median:.3f}, "
            f"stdio {stdio.actor.median / io_bare.median:.3f}; the handle / that floor: "
            f"in-process {in_ours.median / inproc.actor.median:.3f}, "
            f"stdio {io_ours.median / stdio.actor.median:.3f}",
            f"{cfg.size(1000, 40)} calls fired at once per round, round-robin over {n} servers; "
            "in-process: MCPServer objects shared by every side; stdio: bench/raw_server.py, "
            "one process per server per side",
            "the handle runs with the default max_concurrency=32 per server "
            "(50 calls per server are in flight at once); the raw clients have no limit",
            f"full (generation 2) garbage collections during the timed bursts, in-process: "
            f"{inproc.collections}",
            f"stdio: {stdio.collections}",
        ),
    )
