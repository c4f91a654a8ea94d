"""The ``mcpvisor`` command: a live demo, and supervising the servers of an MCP config file.

``mcpvisor demo`` runs bundled servers (one of them crashes now and then, one never starts)
under supervision and shows their lifecycle live. ``run``, ``check``, ``tools`` and
``call`` take a Claude Desktop, Cursor or VS Code config file. See ``mcpvisor --help``.

Exit codes: 0 success; 1 a runtime failure (a required server down, a failed call); 2 bad
usage or a bad config; 128 + the signal's number when SIGINT, SIGTERM or SIGHUP stopped
``check``, ``tools`` or ``call`` (``run`` and ``demo`` end that way and exit 0). Every command
shuts its servers down before it exits, whichever of those signals arrives.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import traceback
from collections.abc import Sequence

from mcpvisor.cli._errors import exit_code_for, leaf, message_for
from mcpvisor.cli._logging import LEVELS, configure_logging, redact
from mcpvisor.cli._signals import Interrupted, become_subreaper, reap_orphans
from mcpvisor.observability._cli import add_metrics_option

__all__ = ["main"]


def _version() -> str:
    from importlib.metadata import version

    return version("mcpvisor")


def _seconds(text: str) -> float:
    """A finite, positive number of seconds (``nan``, ``inf`` and ``-1`` are refused)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"must be a finite number of seconds > 0, got {text!r}")
    return value


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser (exposed for tests and documentation)."""
    common = argparse.ArgumentParser(add_help=False)
    _add_global(common, argparse.SUPPRESS, argparse.SUPPRESS)
    parser = argparse.ArgumentParser(
        prog="mcpvisor",
        description="Supervise MCP servers the way OTP supervises processes.",
    )
    _add_global(parser, None, False)
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    demo = sub.add_parser(
        "demo",
        parents=[common],
        help="watch bundled servers crash, back off, restart and drop, live",
        description=(
            "Supervise four bundled servers (healthy, flaky, HTTP, broken) while a few "
            "callers make tool calls, and show each server's state and the lifecycle events "
            "live. Ends after --duration seconds or on Ctrl-C with a summary."
        ),
    )
    demo.add_argument("--duration", type=_seconds, default=20.0, help="seconds to run (default 20)")
    demo.add_argument(
        "--seed", type=int, default=None, help="seed for the crash schedule and the calls"
    )
    demo.add_argument(
        "--callers",
        type=_positive_int,
        default=3,
        help="concurrent callers making tool calls (default 3)",
    )
    _add_output(demo, plain=True)

    run = sub.add_parser(
        "run",
        parents=[common],
        help="supervise the servers of a config file until Ctrl-C",
        description=(
            "Supervise every server in CONFIG until SIGINT or SIGTERM. Shows a live view on "
            "a terminal and writes JSON-lines events otherwise. SIGHUP reloads CONFIG, as "
            "daemons do: only servers whose config changed restart, and a config that does "
            "not load keeps the running one (the reload event says why)."
        ),
    )
    run.add_argument("config", help="a Claude Desktop, Cursor or VS Code MCP config file")
    run.add_argument(
        "--watch", action="store_true", help="also reload CONFIG whenever the file changes"
    )
    _add_output(run, plain=True)
    add_metrics_option(run)

    check = sub.add_parser(
        "check",
        parents=[common],
        help="start each server of a config once and report",
        description=(
            "Start every server in CONFIG once (no restarts), list its tools and print a "
            "table. Exits 0 if every required server came up (every server with --strict) "
            "and at least one server did."
        ),
    )
    check.add_argument("config")
    check.add_argument("--strict", action="store_true", help="every server must come up")
    _add_output(check)

    tools = sub.add_parser(
        "tools",
        parents=[common],
        help="list the namespaced tools of every server in a config",
        description="Start the servers in CONFIG once and print their tools as server__tool.",
    )
    tools.add_argument("config")
    _add_output(tools)

    call = sub.add_parser(
        "call",
        parents=[common],
        help="call one tool: mcpvisor call CONFIG server__tool '{\"arg\": 1}'",
        description="Start the tool's server from CONFIG, make one call and print the result.",
    )
    call.add_argument("config")
    call.add_argument("tool", help="the qualified tool name, server__tool")
    call.add_argument("arguments", nargs="?", default="{}", help="a JSON object (default {})")
    call.add_argument("--timeout", type=_seconds, default=None, help="seconds to wait for the call")
    _add_output(call)

    from mcpvisor.cli._config_cmd import add_config_parser

    add_config_parser(sub, common)

    from mcpvisor.gateway.command import add_parser as add_serve

    add_serve(sub, common)
    return parser


def _add_global(parser: argparse.ArgumentParser, level: object, debug: object) -> None:
    # The options are accepted before and after the sub-command; a sub-command's copy must
    # not have a default of its own, or it would overwrite one given before it.
    parser.add_argument(
        "--log-level",
        choices=LEVELS,
        default=level,
        help=(
            "log to stderr at this level and above (default: warning; error for the demo, "
            "whose event log already shows every crash)"
        ),
    )
    parser.add_argument(
        "--debug", action="store_true", default=debug, help="show tracebacks for errors"
    )


def _add_output(parser: argparse.ArgumentParser, *, plain: bool = False) -> None:
    parser.add_argument("--json", action="store_true", help="machine-readable JSON on stdout")
    if plain:
        parser.add_argument(
            "--plain", action="store_true", help="plain text lines instead of the live view"
        )


def main(argv: Sequence[str] | None = None, *, reap: bool | None = None) -> int:
    """Run the ``mcpvisor`` command line with ``argv`` (default ``sys.argv[1:]``).

    Returns the exit code. Errors print one line, ``mcpvisor: error: ...``, to stderr;
    ``--debug`` adds the traceback. ``reap`` (default: when ``argv`` is None, that is, when
    this process *is* the command) makes the process a child subreaper and, on the way out,
    terminates and reaps any daemon a server left behind; a host calling ``main`` from its
    own process keeps its children to itself.
    """
    if reap is None:
        reap = argv is None
    if reap:
        become_subreaper()
    try:
        return _main(argv)
    finally:
        if reap:
            reap_orphans()


def _main(argv: Sequence[str] | None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.log_level is None:
        args.log_level = "error" if args.command == "demo" else "warning"
    configure_logging(args.log_level)
    try:
        from mcpvisor.cli import _commands

        return _commands.dispatch(args)
    except KeyboardInterrupt:
        print("mcpvisor: interrupted", file=sys.stderr)
        return 130

    except Interrupted as stopped:
        print(f"mcpvisor: {stopped}", file=sys.stderr)
        return stopped.exit_code
    except Exception as exc:  # the one place that turns errors into exit codes
        if isinstance(leaf(exc), BrokenPipeError):
            # The reader went away (``mcpvisor run --json | head``): stop quietly, as Unix
            # tools do, and keep the interpreter's final flush from raising again.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return 141
        code = exit_code_for(exc)
        if args.debug:
            for chunk in traceback.format_exception(exc):
                sys.stderr.write(redact(chunk))
        print(f"mcpvisor: error: {redact(message_for(exc, hint=not args.debug))}", file=sys.stderr)
        return 1 if code is None else code
