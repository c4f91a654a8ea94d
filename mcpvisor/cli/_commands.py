"""``run``, ``check``, ``tools`` and ``call``: supervising the servers of a config file."""

from __future__ import annotations

import argparse
import json
import signal
import sys
from collections.abc import Awaitable, Callable
from difflib import get_close_matches
from typing import Any

import attrs
import trio
from rich.console import Console
from rich.live import Live
from rich.table import Table
from rich.text import Text

import mcpvisor as mv
from mcpvisor.cli._errors import UsageError, leaf
from mcpvisor.cli._logging import protect, redact, route_logs
from mcpvisor.cli._reload import Reloader
from mcpvisor.cli._signals import Interrupted, SignalPlan, stop_signals
from mcpvisor.cli._view import STATE_STYLES, Board, dump_json, event_plain, event_record
from mcpvisor.observability._cli import MetricsEndpoint
from mcpvisor.specs import NAME_SEPARATOR, split_qualified


def dispatch(args: argparse.Namespace) -> int:
    """Run the sub-command ``args.command`` and return its exit code."""
    if args.command == "demo":
        from mcpvisor.cli._demo import run_demo

        return run_demo(args)
    if args.command == "config":
        from mcpvisor.cli._config_cmd import cmd_config

        return cmd_config(args)
    if args.command == "serve":
        from mcpvisor.gateway.command import cmd_serve

        return cmd_serve(args)
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
        spec = mv.load_config(path)
    except OSError as exc:
        raise UsageError(f"cannot read config {path!r}: {exc.strerror or exc}") from exc
    protect(spec)
    return spec


def try_once(spec: mv.SupervisorSpec) -> mv.SupervisorSpec:
    """``spec`` with every server started eagerly, once, as optional: to look, not to keep.

    A one-shot command wants each server's first attempt, not a restart loop, and wants to
    report a failed required server rather than abort on it. With no restart budget a server
    that cannot start is DROPPED, the word ``run`` ends on for it too.
    """
    servers = [
        attrs.evolve(
            s,
            required=False,
            start="eager",
            idle_shutdown=None,
            restart=attrs.evolve(s.restart, max_restarts=0),
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
    async with stop_signals() as stopped, mv.open_supervisor(try_once(spec)) as client:
        status = client.status()
        tools = await client.list_tools(include_unavailable=True)
    if stopped.by is not None:
        raise Interrupted(stopped.by)
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
                "error": None if up or server.last_error is None else redact(server.last_error),
            }
        )
    n_up = sum(1 for r in rows if r["state"] == "active")
    if rows and n_up == 0:
        ok = False
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
    verdict = "ok" if ok else "FAILED"
    console.print(f"{n_up}/{len(rows)} servers up (* required): {verdict}")
    return 0 if ok else 1


# ---- tools -------------------------------------------------------------------------------


def cmd_tools(args: argparse.Namespace) -> int:
    spec = load(args.config)
    return trio.run(_tools, spec, args)


async def _tools(spec: mv.SupervisorSpec, args: argparse.Namespace) -> int:
    required = {s.name for s in spec.servers if s.required}
    async with stop_signals() as stopped, mv.open_supervisor(try_once(spec)) as client:
        status = client.status()
        tools = await client.list_tools()
    if stopped.by is not None:
        raise Interrupted(stopped.by)
    down = {n: s for n, s in status.servers.items() if s.state is not mv.ServerState.ACTIVE}
    for name, server in down.items():
        cause = f": {redact(server.last_error)}" if server.last_error else ""
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


MAX_ARGUMENT_DEPTH = 100
"""How deeply ``call`` arguments may nest, as the library bounds a request's arguments."""


def parse_arguments(text: str) -> dict[str, Any]:
    """The JSON object ``text``; anything else (bad JSON, an array, a value nested past
    :data:`MAX_ARGUMENT_DEPTH` levels) is a usage error."""
    try:
        arguments = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(f"arguments are not valid JSON: {exc.msg} at column {exc.colno}") from None
    except RecursionError:
        raise UsageError(f"arguments nest deeper than {MAX_ARGUMENT_DEPTH} levels") from None
    if not isinstance(arguments, dict):
        raise UsageError('arguments must be a JSON object, like \'{"path": "/tmp"}\'')
    if nesting(arguments) > MAX_ARGUMENT_DEPTH:
        raise UsageError(f"arguments nest deeper than {MAX_ARGUMENT_DEPTH} levels")
    return arguments


def nesting(value: object) -> int:
    """How many levels of objects and arrays ``value`` has (iterative: no recursion limit)."""
    deepest = 0
    stack: list[tuple[object, int]] = [(value, 0)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            items: list[object] = list(node.values())
        elif isinstance(node, list):
            items = node
        else:
            continue
        deepest = max(deepest, depth + 1)
        stack.extend((item, depth + 1) for item in items)
    return deepest


def cmd_call(args: argparse.Namespace) -> int:
    spec = load(args.config)
    parts = split_qualified(args.tool)
    if parts is None:
        raise UsageError(f"tool must be written server{NAME_SEPARATOR}tool, got {args.tool!r}")
    server, tool = parts
    if server not in spec.names:
        close = get_close_matches(server, list(spec.names), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise UsageError(f"unknown server {server!r} in {args.config}{hint}")
    arguments = parse_arguments(args.arguments)
    only = attrs.evolve(spec[server], group=None)
    one = try_once(mv.SupervisorSpec(servers=[only]))
    one = attrs.evolve(one, servers=[attrs.evolve(one.servers[0], required=True)])
    calling: list[bool] = []
    try:
        return trio.run(_call, one, server, tool, arguments, args, calling)
    except BaseException as exc:
        failure = leaf(exc)
        if isinstance(failure, mv.RequiredServerError):
            # Required only so that a failed start ends the command at once: say what became
            # of the call, or of the server, which the config may not require at all.
            if calling:
                cause = failure.cause or "the server was dropped"
                raise mv.RequestInterruptedError(server, "call_tool", cause) from None
            state = mv.ServerState.DROPPED
            raise mv.ServerUnavailableError(server, state, failure.cause) from None
        raise


async def _call(
    spec: mv.SupervisorSpec,
    server: str,
    tool: str,
    arguments: dict[str, Any],
    args: argparse.Namespace,
    calling: list[bool],
) -> int:
    async with stop_signals() as stopped, mv.open_supervisor(spec) as client:
        # The server is up: with no restart allowed, its loss from now on cuts the call off.
        calling.append(True)
        result = await client.call_tool(server, tool, arguments, timeout=args.timeout)
    if stopped.by is not None:
        raise Interrupted(stopped.by)
    if args.json:
        dump_json(result.model_dump(mode="json", by_alias=True), redacted=False)
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


def run_signals(reloader: Reloader) -> SignalPlan:
    """What a signal does to ``run`` other than stopping it: SIGHUP reloads, as daemons do."""
    return {signal.SIGHUP: reloader.request}


async def _run(spec: mv.SupervisorSpec, args: argparse.Namespace) -> int:
    live = use_live(args)
    json_lines = args.json or (not live and not args.plain)
    metrics = MetricsEndpoint(args.metrics)
    supervisor = mv.Supervisor(spec, hooks=metrics.hooks)
    reloader = Reloader(args.config, watch=args.watch)
    t0 = trio.current_time()
    # Subscribed before startup, so the event log shows every server starting.
    async with (
        stop_signals(run_signals(reloader)) as stopped,
        supervisor.subscribe() as events,
        trio.open_nursery() as nursery,
    ):

        async def on_ready(client: mv.SupervisorClient) -> None:
            await metrics.start(nursery, client)
            await nursery.start(reloader.serve, client)

        if live:
            await live_view(
                supervisor,
                events,
                Board(t0=t0),
                title="mcpvisor run",
                nursery=nursery,
                on_ready=on_ready,
            )
        else:
            await _run_lines(
                supervisor, events, t0, nursery, json_lines=json_lines, on_ready=on_ready
            )
    name = stopped.name
    if json_lines:
        dump_json({"type": "stopped", "signal": name})
    else:
        print(f"mcpvisor: stopped ({name or 'done'}); all servers shut down")
    return 0


async def _run_lines(
    supervisor: mv.Supervisor,
    events: Any,
    t0: float,
    nursery: trio.Nursery,
    *,
    json_lines: bool,
    on_ready: Callable[[mv.SupervisorClient], Awaitable[object]] | None = None,
) -> None:
    async def show() -> None:
        async for event in events:
            if json_lines:
                dump_json(event_record(event, t0))
            else:
                print(event_plain(event, t0), flush=True)

    nursery.start_soon(show)
    client = await nursery.start(supervisor.run)
    if on_ready is not None:
        await on_ready(client)
    status = client.status()
    if json_lines:
        dump_json({"type": "ready", "status": status.to_dict()})
    else:
        print(f"ready: {', '.join(f'{n} {s.state.value}' for n, s in status.servers.items())}")
        sys.stdout.flush()


async def live_view(
    supervisor: mv.Supervisor,
    events: Any,
    board: Board,
    *,
    title: str,
    nursery: trio.Nursery,
    on_ready: Callable[[mv.SupervisorClient], Awaitable[object]] | None = None,
) -> None:
    """Run ``supervisor`` in ``nursery`` and draw ``board`` for it: startup first, then
    redraw on each event and twice a second. Log lines go into the event panel meanwhile.
    ``on_ready(client)`` runs once startup is done (``run`` starts its reloads there)."""
    console = Console()
    names = supervisor.spec.names
    client: Any = None

    def render() -> Any:
        status = client.status() if client is not None else None
        return board.render(status, title=title, pending=names)

    with Live(render(), console=console, auto_refresh=False, transient=False) as live:

        def redraw() -> None:
            live.update(render(), refresh=True)

        def log_line(line: str) -> None:
            board.add_log(line)
            redraw()

        with route_logs(log_line):

            async def show() -> None:
                async for event in events:
                    board.add_event(event)
                    redraw()

            async def tick() -> None:
                while True:
                    await trio.sleep(0.5)
                    redraw()

            nursery.start_soon(show)
            nursery.start_soon(tick)
            client = await nursery.start(supervisor.run)
            if on_ready is not None:
                await on_ready(client)
            redraw()
            await trio.sleep_forever()
