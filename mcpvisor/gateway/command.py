"""``mcpvisor serve CONFIG --stdio | --http HOST:PORT``: the gateway as a command.

The supervisor runs every server of CONFIG; the gateway serves them as one MCP server until
stdin closes (stdio) or SIGINT/SIGTERM arrives. SIGHUP (and, with ``--watch``, a change to
CONFIG) reloads the config without restarting unchanged servers, as ``run`` does. Over HTTP,
``/metrics`` serves Prometheus metrics when the ``prometheus`` extra is installed. Required
servers do not end the process when they drop: the gateway stays up, reports not-ready on
``/readyz`` and serves the others, so a load balancer takes it out of rotation until the server
is back. A reload keeps the list of required servers ``/readyz`` waits for from the start.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import attrs
import trio

from mcpvisor.specs import SupervisorSpec, UsageError

if TYPE_CHECKING:
    import anyio

    from mcpvisor.gateway.http import HttpSettings
    from mcpvisor.gateway.options import GatewayOptions
    from mcpvisor.gateway.server import Gateway

TOKEN_ENV = "MCPVISOR_GATEWAY_TOKEN"
"""The environment variable holding the HTTP gateway's bearer token."""


def add_parser(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    """Add the ``serve`` sub-command to the CLI's sub-parsers."""
    serve = sub.add_parser(
        "serve",
        parents=[common],
        help="serve every server of a config as one MCP server (stdio or streamable HTTP)",
        description=(
            "Supervise every server in CONFIG and serve their tools (server__tool), resources "
            "and prompts as one MCP server, over stdio (for a desktop host) or streamable HTTP "
            "(with /healthz, /readyz and /status)."
        ),
    )
    serve.add_argument("config", help="a Claude Desktop, Cursor or VS Code MCP config file")
    mode = serve.add_mutually_exclusive_group(required=True)
    mode.add_argument("--stdio", action="store_true", help="serve one client on stdin/stdout")
    mode.add_argument("--http", metavar="HOST:PORT", help="serve streamable HTTP at /mcp")
    serve.add_argument(
        "--token-file",
        help=f"file holding the bearer token (default: ${TOKEN_ENV}); required off loopback",
    )
    serve.add_argument(
        "--insecure", action="store_true", help="allow a non-loopback bind without a token"
    )
    serve.add_argument(
        "--allow-host",
        action="append",
        default=[],
        metavar="HOST[:*]",
        help="also accept this Host header (DNS-rebinding check), e.g. 'gateway.example:*'",
    )
    serve.add_argument(
        "--max-body-bytes", type=int, default=4 * 1024 * 1024, help="largest request body"
    )
    serve.add_argument(
        "--watch", action="store_true", help="reload the config whenever the file changes"
    )


def parse_bind(value: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:8080`` for IPv6; ``:PORT`` means 127.0.0.1) as a pair."""
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise UsageError("--http", f"expected HOST:PORT, got {value!r}")
    return (host.strip("[]") or "127.0.0.1"), int(port)


def read_token(token_file: str | None) -> str | None:
    """The bearer token from ``token_file`` (stripped) or the environment, else None."""
    if token_file is not None:
        try:
            text = Path(token_file).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise UsageError(
                "--token-file", f"cannot read {token_file!r}: {exc.strerror}"
            ) from None
        if not text:
            raise UsageError("--token-file", f"{token_file!r} is empty")
        return text
    value = os.environ.get(TOKEN_ENV, "").strip()
    return value or None


def gateway_spec(spec: SupervisorSpec) -> tuple[SupervisorSpec, list[str]]:
    """``spec`` with no server required, and the names that were: the gateway reports them
    on ``/readyz`` instead of exiting when one drops."""
    required = [s.name for s in spec.servers if s.required]
    servers = [attrs.evolve(s, required=False) for s in spec.servers]
    return attrs.evolve(spec, servers=servers), required


def cmd_serve(args: argparse.Namespace) -> int:
    """Run ``mcpvisor serve``; returns the exit code."""
    import mcpvisor as mv
    from mcpvisor.gateway.http import HttpSettings
    from mcpvisor.gateway.options import read_options

    try:
        spec = mv.load_config(args.config)
    except OSError as exc:
        raise UsageError("config", f"cannot read config {args.config!r}: {exc.strerror}") from exc
    options = read_options(args.config, [s.name for s in spec.servers])
    settings = None
    if args.http is not None:
        host, port = parse_bind(args.http)
        settings = HttpSettings(
            host=host,
            port=port,
            token=read_token(args.token_file),
            insecure=args.insecure,
            allowed_hosts=tuple(args.allow_host),
            max_body_bytes=args.max_body_bytes,
        )
    trio.run(_serve, spec, options, settings, Path(args.config), args.watch)
    return 0


def _prometheus() -> Any:
    """The Prometheus hooks when the ``prometheus`` extra is installed, else None."""
    try:
        from mcpvisor.observability.prometheus import PrometheusMetrics
    except ImportError:
        return None
    return PrometheusMetrics()


async def _serve(
    spec: SupervisorSpec,
    options: GatewayOptions,
    settings: HttpSettings | None,
    config: Path,
    watch: bool,
) -> None:
    import mcpvisor as mv
    from mcpvisor.cli._logging import protect
    from mcpvisor.cli._reload import Reloader
    from mcpvisor.cli._signals import stop_signals
    from mcpvisor.gateway.http import serve_http
    from mcpvisor.gateway.server import open_gateway

    gateway: Gateway | None = None

    def reload_spec() -> SupervisorSpec:
        loaded = mv.load_config(config)
        protect(loaded)
        spec = gateway_spec(loaded)[0]
        # The relay's handlers stay the supervisor's: a reload changes servers, not them.
        relay = gateway.relay if gateway is not None else None
        return spec if relay is None else relay.install(spec)

    spec, required = gateway_spec(spec)
    reloader = Reloader(config, watch=watch, load=reload_spec)
    metrics = _prometheus() if settings is not None else None
    hooks = () if metrics is None else (metrics,)
    async with (
        stop_signals({signal.SIGHUP: reloader.request}),
        open_gateway(spec, options, required=required, hooks=hooks) as opened,
        trio.open_nursery() as nursery,
    ):
        gateway = opened
        client = gateway.client
        await nursery.start(reloader.serve, client)
        if settings is None:
            await serve_stdio(gateway)
        else:
            from mcpvisor.observability.prometheus import metrics_app

            scrape = None if metrics is None else metrics_app(client, metrics)
            url = await nursery.start(partial(serve_http, metrics_app=scrape), gateway, settings)
            print(f"mcpvisor: serving {url}{settings.path}", file=sys.stderr, flush=True)
            await trio.sleep_forever()
        nursery.cancel_scope.cancel()


async def serve_stdio(gateway: Gateway) -> None:
    """Serve one client on this process's stdin/stdout until stdin closes or it is cancelled."""
    from mcp.server.stdio import stdio_server

    stdin = cast("anyio.AsyncFile[str]", _StdinLines())
    async with stdio_server(stdin=stdin) as (read, write):
        await gateway.server.run(read, write, gateway.initialization_options())


class _StdinLines:
    """This process's stdin as the lines ``stdio_server`` iterates, read in a thread that a
    cancellation abandons.

    The SDK's own reader waits in a thread nothing interrupts, so a SIGTERM left a stdio
    gateway running until its host closed stdin (``docker stop`` hung until SIGKILL). An
    abandoned read ends with the process, which is exiting; fd 0 is never closed under it.
    """

    def __init__(self) -> None:
        self._file = open(0, encoding="utf-8", errors="replace", closefd=False)  # noqa: SIM115

    def __aiter__(self) -> _StdinLines:
        return self

    async def __anext__(self) -> str:
        line = await trio.to_thread.run_sync(self._file.readline, abandon_on_cancel=True)
        if not line:
            raise StopAsyncIteration
        return line
