"""``mcpvisor demo``: bundled servers crash, back off, restart and drop while calls flow.

Four servers from :mod:`mcpvisor.demo` run under one supervisor; a few callers make tool
calls through the client handle; the lifecycle events and each server's state are shown
live (or as plain lines, or as JSON lines). It ends after ``--duration`` seconds or on
Ctrl-C with a summary of the calls and restarts.
"""

from __future__ import annotations

import argparse
import random
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import attrs
import trio
from mcp.shared.exceptions import MCPError
from rich.console import Console
from rich.live import Live

import mcpvisor as mv
from mcpvisor.cli._commands import use_live
from mcpvisor.cli._errors import UsageError
from mcpvisor.cli._logging import route_logs
from mcpvisor.cli._signals import stop_signals
from mcpvisor.cli._view import Board, dump_json, event_plain, event_record
from mcpvisor.demo import demo_spec, open_http_server

_WORDS = ("otp", "trio", "backoff", "supervisor", "restart", "jitter", "mcp", "erlang")
_CITIES = ("Paris", "Lagos", "Lima", "Oslo", "Osaka", "Quito", "Perth")

Plan = tuple[str, str, Callable[[random.Random], dict[str, Any]]]
PLANS: tuple[Plan, ...] = (
    ("notes", "echo", lambda r: {"text": r.choice(_WORDS)}),
    ("notes", "add", lambda r: {"a": r.randint(0, 99), "b": r.randint(0, 99)}),
    ("notes", "word_count", lambda r: {"text": " ".join(r.sample(_WORDS, 3))}),
    ("flaky", "lookup", lambda r: {"key": r.choice(_WORDS)}),
    ("flaky", "lookup", lambda r: {"key": r.choice(_WORDS)}),
    ("weather", "forecast", lambda r: {"city": r.choice(_CITIES)}),
)
"""The calls the demo's callers choose from; flaky is listed twice so it crashes often."""


@attrs.define
class Tally:
    """What the demo saw: calls per outcome, pids of every server process, the end status."""

    made: int = 0
    succeeded: int = 0
    failed: int = 0
    interrupted: int = 0
    pids: set[int] = attrs.field(factory=set)
    status: Any = None
    stopped_by: str = "duration"
    signal: str | None = None
    ran_for: float = 0.0

    def seen(self, status: mv.SupervisorStatus) -> None:
        self.status = status
        self.pids.update(s.pid for s in status.servers.values() if s.pid is not None)


def run_demo(args: argparse.Namespace) -> int:
    """Entry point of ``mcpvisor demo``; returns the exit code."""
    if args.duration <= 0:
        raise UsageError("--duration must be > 0")
    if args.callers < 1:
        raise UsageError("--callers must be >= 1")
    return trio.run(_demo, args)


async def _demo(args: argparse.Namespace) -> int:
    seed = args.seed if args.seed is not None else random.randrange(2**32)
    rng = random.Random(seed)
    crash_after = rng.randint(4, 9)
    json_out = bool(args.json)
    live = use_live(args)
    tally = Tally()
    board = Board(t0=0.0, show_calls=True, log_lines=14)
    console = Console()
    quiet = args.log_level not in ("debug", "info")

    def emit(event: mv.LifecycleEvent | mv.EventsLost) -> None:
        if json_out:
            dump_json(event_record(event, board.t0))
        elif not live:
            print(event_plain(event, board.t0), flush=True)
        board.add_event(event)

    async def call_loop(client: Any, n: int) -> None:
        r = random.Random(rng.random())
        while True:
            server, tool, make_args = r.choice(PLANS)
            counts = board.counts(server)
            try:
                result = await client.call_tool(server, tool, make_args(r), timeout=5)
            except mv.RequestInterruptedError:
                counts.interrupted += 1
                tally.interrupted += 1
            except (mv.MCPVisorError, MCPError):
                counts.failed += 1
                tally.failed += 1
            else:
                if result.is_error:
                    counts.failed += 1
                    tally.failed += 1
                else:
                    counts.ok += 1
                    tally.succeeded += 1
            tally.made += 1
            await trio.sleep(r.uniform(0.05, 0.3))

    subscription: Any = None  # opened before startup, so the log shows servers starting

    async def watch(client: Any, redraw: Callable[[], None]) -> None:
        async for event in subscription:
            tally.seen(client.status())
            emit(event)
            redraw()

    async def tick(client: Any, redraw: Callable[[], None]) -> None:
        while True:
            tally.seen(client.status())
            redraw()
            await trio.sleep(0.25)

    http_stderr = subprocess.DEVNULL if quiet else None
    async with stop_signals() as stopped, open_http_server(stderr=http_stderr) as http:
        tally.pids.add(http.pid)
        spec = demo_spec(http.url, crash_after=crash_after)
        if json_out:
            dump_json(
                {
                    "type": "start",
                    "seed": seed,
                    "crash_after": crash_after,
                    "servers": list(spec.names),
                    "http_pid": http.pid,
                }
            )
        elif not live:
            print(f"starting {', '.join(spec.names)} (seed {seed})", flush=True)
        supervisor = mv.Supervisor(spec, rng=random.Random(rng.random()))
        board.t0 = trio.current_time()
        async with supervisor.subscribe() as subscription, trio.open_nursery() as running:
            client = await running.start(supervisor.run)
            try:
                await _supervised(
                    client,
                    args,
                    tally,
                    board,
                    console,
                    live,
                    json_out,
                    call_loop,
                    watch,
                    tick,
                )
            finally:
                tally.seen(client.status())
                tally.ran_for = trio.current_time() - board.t0
                await supervisor.aclose()
    if stopped.by is not None:
        tally.stopped_by = "signal"
        tally.signal = stopped.name
    _summarize(tally, board, seed, json_out=json_out, console=console)
    return 0


async def _supervised(
    client: Any,
    args: argparse.Namespace,
    tally: Tally,
    board: Board,
    console: Console,
    live: bool,
    json_out: bool,
    call_loop: Any,
    watch: Any,
    tick: Any,
) -> None:
    status = client.status()
    tally.seen(status)
    if json_out:
        dump_json({"type": "ready", "status": status.to_dict()})
    elif not live:
        states = ", ".join(f"{n} {s.state.value}" for n, s in status.servers.items())
        print(f"ready: {states}", flush=True)

    async def body(redraw: Callable[[], None]) -> None:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(watch, client, redraw)
            nursery.start_soon(tick, client, redraw)
            for n in range(args.callers):
                nursery.start_soon(call_loop, client, n)
            await trio.sleep(args.duration)
            nursery.cancel_scope.cancel()

    if not live:
        await body(lambda: None)
        return
    title = "mcpvisor demo (Ctrl-C to stop)"
    with Live(board.render(status, title=title), console=console, auto_refresh=False) as view:

        def redraw() -> None:
            view.update(board.render(client.status(), title=title), refresh=True)

        def log_line(line: str) -> None:
            board.add_log(line)
            redraw()

        with route_logs(log_line):
            await body(redraw)


def _summarize(tally: Tally, board: Board, seed: int, *, json_out: bool, console: Console) -> None:
    status = tally.status
    servers: dict[str, Any] = {}
    if status is not None:
        for name, server in status.servers.items():
            servers[name] = {
                "state": server.state.value,
                "restarts": server.restarts,
                "calls": board.counts(name).to_dict(),
                "last_error": server.last_error,
            }
    summary = {
        "type": "summary",
        "seed": seed,
        "stopped_by": tally.stopped_by,
        "signal": tally.signal,
        "duration": round(tally.ran_for, 3),
        "calls": {
            "made": tally.made,
            "succeeded": tally.succeeded,
            "failed": tally.failed,
            "interrupted": tally.interrupted,
        },
        "servers": servers,
        "pids": sorted(tally.pids),
    }
    if json_out:
        dump_json(summary)
        return
    out = console if console.is_terminal else None
    lines = [
        f"demo ran {tally.ran_for:.1f}s (stopped by {tally.stopped_by}, seed {seed}): "
        f"{tally.made} calls, {tally.succeeded} succeeded, {tally.interrupted} interrupted "
        f"by a crash, {tally.failed} failed",
    ]
    for name, info in servers.items():
        calls = info["calls"]
        lines.append(
            f"  {name:<8} {info['state']:<8} restarts {info['restarts']:<3} "
            f"calls ok {calls['ok']:<4} failed {calls['failed']:<3} "
            f"interrupted {calls['interrupted']}"
        )
    for line in lines:
        if out is not None:
            out.print(line, highlight=False)
        else:
            print(line)
    sys.stdout.flush()
