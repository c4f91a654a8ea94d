"""``run``, ``check``, ``tools`` and ``call``: supervising the servers of a config file."""

from __future__ import annotations

import argparse
import json
import signal
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from difflib import get_close_matches
from functools import partial
from typing import Any

import attrs
import trio
from rich.console import Console
from rich.live import Live
from rich.table import Table
from rich.text import Text

import mcpvisor as mv
from mcpvisor.cli._errors import UsageError
from mcpvisor.cli._reload import serve_reloads
from mcpvisor.cli._view import STATE_STYLES, Board, dump_json, event_plain, event_record
from mcpvisor.specs import NAME_SEPARATOR


def dispatch(args: argparse.Namespace) -> int:
    """Run the sub-command ``args.command`` and return its exit code."""
    if args.command == "demo":
        from mcpvisor.cli._demo import run_demo

        return run_demo(args)
    commands: dict[str, Callable[[argparse.Namespace], int]] = {
        "run": cmd_run,
        "check": cmd_check,
        "tools": cmd_tools,
        "call": cmd_call,
    }
    return commands[args.command](args)


def load(path: str) -> mv.SupervisorSpec:
    """The spec in config file ``path``; an unreadable file is a usage error."""
    try:
        return mv.load_config(path)
    except OSError as exc:
        raise UsageError(f"cannot read config {path!r}: {exc.strerror or exc}") from exc


def try_once(spec: mv.SupervisorSpec) -> mv.SupervisorSpec:
    """``spec`` with every server started eagerly, once, as optional: to look, not to keep.

    A one-shot command wants each server's first attempt, not a restart loop, and wants to
    report a failed required server rather than abort on it.
    """
    servers = [
        attrs.evolve(
            s,
            required=False,
            start="eager",
            idle_shutdown=None,
            restart=attrs.evolve(s.restart, restart="temporary"),
        )
        for s in spec.servers
    ]
    return attrs.evolve(spec, servers=servers)


def use_live(args: argparse.Namespace) -> bool:
    """Draw a live view only for a person at a terminal who asked for nothing else."""
    return not args.json and not getattr(args, "plain", False) and sys.stdout.isatty()


# ---- check -------------------------------------------------------------------------------


def cmd_check(args: argparse.Namespace) -> int:
    spec = load(args.config)
    return trio.run(_check, spec, args)


async def _check(spec: mv.SupervisorSpec, args: argparse.Namespace) -> int:
    required = {s.name: s.required for s in spec.servers}
    async with mv.open_supervisor(try_once(spec)) as client:
        status = client.status()
        tools = await client.list_tools(include_unavailable=True)
    counts = {name: 0 for name in status.servers}
    for entry in tools:
        counts[entry.server] = counts.get(entry.server, 0) + 1
    rows: list[dict[str, Any]] = []
    ok = True
    for name, server in status.servers.items():
        up = server.state is mv.ServerState.ACTIVE
        if not up and (args.strict or required.get(name, False)):
            ok = False
        rows.append(
            {
                "server": name,
                "transport": server.transport,
                "state": server.state.value,
                "required": required.get(name, False),
                "tools": counts.get(name, 0),
                "error": None if up else server.last_error,
            }
        )
    if args.json:
        dump_json({"ok": ok, "servers": rows})
        return 0 if ok else 1
    table = Table(box=None, header_style="bold", pad_edge=False)
    for column in ("server", "transport", "state", "tools", "error"):
        table.add_column(column, justify="right" if column == "tools" else "left")
    for row in rows:
        name = str(row["server"]) + (" *" if row["required"] else "")
        state = str(row["state"])
        table.add_row(
            name,
            str(row["transport"]),
            Text(state, STATE_STYLES.get(state, "")),
            str(row["tools"]),
            Text(str(row["error"] or ""), "red"),
        )
    console = Console(soft_wrap=False)
    console.print(table)
    n_up = sum(1 for r in rows if r["state"] == "active")
    verdict = "ok" if ok else "FAILED"
    console.print(f"{n_up}/{len(rows)} servers up (* required): {verdict}")
    return 0 if ok else 1


# ---- tools -------------------------------------------------------------------------------


def cmd_tools(args: argparse.Namespace) -> int:
    spec = load(args.config)
    return trio.run(_tools, spec, args)


async def _tools(spec: mv.SupervisorSpec, args: argparse.Namespace) -> int:
    required = {s.name for s in spec.servers if s.required}
    async with mv.open_supervisor(try_once(spec)) as client:
        status = client.status()
        tools = await client.list_tools()
    down = {n: s for n, s in status.servers.items() if s.state is not mv.ServerState.ACTIVE}
    for name, server in down.items():
        cause = f": {server.last_error}" if server.last_error else ""
        print(f"mcpvisor: warning: server {name!r} is {server.state.value}{cause}", file=sys.stderr)
    if args.json:
        dump_json(
            {
                "tools": [
                    {
                        "qualified_name": t.qualified_name,
                        "server": t.server,
                        "name": t.name,
                        "description": t.tool.description,
                        "input_schema": t.tool.input_schema,
                    }
                    for t in tools
                ]
            }
        )
    else:
        table = Table(box=None, header_style="bold", pad_edge=False)
        table.add_column("tool", no_wrap=True)
        table.add_column("description", overflow="fold")
        for t in tools:
            first = (t.tool.description or "").strip().splitlines()
            table.add_row(t.qualified_name, first[0] if first else "")
        Console(soft_wrap=False).print(table)
    return 1 if required & down.keys() else 0


# ---- call --------------------------------------------------------------------------------


def cmd_call(args: argparse.Namespace) -> int:
    spec = load(args.config)
    server, sep, tool = args.tool.partition(NAME_SEPARATOR)
    if not sep or not server or not tool:
        raise UsageError(f"tool must be written server{NAME_SEPARATOR}tool, got {args.tool!r}")
    if server not in spec.names:
        close = get_close_matches(server, list(spec.names), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise UsageError(f"unknown server {server!r} in {args.config}{hint}")
    try:
        arguments = json.loads(args.arguments)
    except json.JSONDecodeError as exc:
        raise UsageError(f"arguments are not valid JSON: {exc.msg} at column {exc.colno}") from None
    if not isinstance(arguments, dict):
        raise UsageError('arguments must be a JSON object, like \'{"path": "/tmp"}\'')
    only = attrs.evolve(spec[server], group=None)
    one = try_once(mv.SupervisorSpec(servers=[only]))
    one = attrs.evolve(one, servers=[attrs.evolve(one.servers[0], required=True)])
    return trio.run(_call, one, server, tool, arguments, args)


async def _call(
    spec: mv.SupervisorSpec,
    server: str,
    tool: str,
    arguments: dict[str, Any],
    args: argparse.Namespace,
) -> int:
    async with mv.open_supervisor(spec) as client:
        result = await client.call_tool(server, tool, arguments, timeout=args.timeout)
    if args.json:
        dump_json(result.model_dump(mode="json", by_alias=True))
        return 1 if result.is_error else 0
    out = sys.stderr if result.is_error else sys.stdout
    printed = False
    for block in result.content:
        text = getattr(block, "text", None)
        if isinstance(text, str):
            print(text, file=out)
        else:
            print(json.dumps(block.model_dump(mode="json", by_alias=True)), file=out)
        printed = True
    if not printed and result.structured_content is not None:
        print(json.dumps(result.structured_content, indent=2), file=out)
    return 1 if result.is_error else 0


# ---- run ---------------------------------------------------------------------------------


def cmd_run(args: argparse.Namespace) -> int:
    spec = load(args.config)
    return trio.run(_run, spec, args)


@contextmanager
def _stop_signals() -> Iterator[Any]:
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        yield signals


async def _cancel_on_signal(signals: Any, scope: trio.CancelScope, received: list[str]) -> None:
    async for signum in signals:
        received.append(signal.Signals(signum).name)
        scope.cancel()
        return


async def _run(spec: mv.SupervisorSpec, args: argparse.Namespace) -> int:
    live = use_live(args)
    json_lines = args.json or (not live and not args.plain)
    received: list[str] = []
    with _stop_signals() as signals:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_cancel_on_signal, signals, nursery.cancel_scope, received)
            async with mv.open_supervisor(spec) as client:
                t0 = client.status().at
                reloads = partial(serve_reloads, client, args.config, watch=args.watch)
                await nursery.start(reloads)
                if live:
                    await _run_live(client, t0)
                else:
                    await _run_lines(client, t0, json_lines=json_lines)
            nursery.cancel_scope.cancel()
    if json_lines:
        dump_json({"type": "stopped", "signal": received[0] if received else None})
    else:
        print(f"mcpvisor: stopped ({received[0] if received else 'done'}); all servers shut down")
    return 0


async def _run_lines(client: Any, t0: float, *, json_lines: bool) -> None:
    status = client.status()
    if json_lines:
        dump_json({"type": "ready", "status": status.to_dict()})
    else:
        print(f"ready: {', '.join(f'{n} {s.state.value}' for n, s in status.servers.items())}")
        sys.stdout.flush()
    async with client.subscribe() as events:
        async for event in events:
            if json_lines:
                dump_json(event_record(event, t0))
            else:
                print(event_plain(event, t0), flush=True)


async def _run_live(client: Any, t0: float) -> None:
    board = Board(t0=t0)
    await live_view(client, board, title="mcpvisor run")


async def live_view(client: Any, board: Board, *, title: str) -> None:
    """Draw ``board`` for ``client`` until cancelled: redraw on each event and twice a second."""
    console = Console()
    with Live(
        board.render(client.status(), title=title),
        console=console,
        auto_refresh=False,
        transient=False,
    ) as live:
        async with client.subscribe() as events, trio.open_nursery() as nursery:

            async def tick() -> None:
                while True:
                    await trio.sleep(0.5)
                    live.update(board.render(client.status(), title=title), refresh=True)

            nursery.start_soon(tick)
            async for event in events:
                board.add_event(event)
                live.update(board.render(client.status(), title=title), refresh=True)
