"""Scenarios 14 and 15: one call_tool at a time through ``mcpvisor serve`` vs to the server.

The gateway adds a hop: the host's client talks to the gateway, whose supervised session talks
to the server. Both sides run the same server program (bench/mcp_server.py over stdio), are
connected at the same time and take turns in rounds. Over stdio the gateway is a subprocess
(``mcpvisor serve CONFIG --stdio``), as a desktop host runs it; over HTTP it runs in this
process on 127.0.0.1, served by hypercorn's Trio worker, and the client speaks streamable HTTP.
"""

from __future__ import annotations

import json
import sys
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import trio
from mcp import Client, StdioServerParameters

import mcpvisor as mv
from bench.common import (
    MCP_SERVER,
    Config,
    Outcome,
    alternate,
    ratio,
    raw_params,
    series,
    stdio_spec,
    text_of,
    timed_calls,
)

_ARGS = {"a": 1, "b": 2}


async def _rounds(
    cfg: Config, through: Callable[[], Awaitable[Any]], direct: Callable[[], Awaitable[Any]]
) -> tuple[list[float], list[float]]:
    assert text_of(await through()) == text_of(await direct()) == "3"
    warm = cfg.size(100, 5)
    await timed_calls(through, warm, [])
    await timed_calls(direct, warm, [])
    ours: list[float] = []
    raw: list[float] = []
    n = cfg.size(200, 10)

    async def side_ours() -> None:
        await timed_calls(through, n, ours)

    async def side_raw() -> None:
        await timed_calls(direct, n, raw)

    await alternate(cfg.size(20, 2), [side_ours, side_raw])
    return ours, raw


def _outcome(number: int, how: str, ours: list[float], raw: list[float], note: str) -> Outcome:
    a, b = series(f"through the gateway ({how})", ours), series("raw mcp.Client", raw)
    r = ratio(a, b)
    return Outcome(
        number,
        f"call_tool latency through mcpvisor serve, {how}",
        (a, b),
        "gateway / direct (median)",
        r,
        "<= 2.5",
        r <= 2.5,
        (f"{len(ours)} calls per side, in alternating rounds; {note}",),
    )


async def stdio(cfg: Config) -> Outcome:
    """14: call_tool latency through ``mcpvisor serve --stdio`` vs the server directly."""
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "gateway.json"
        server = {
            "command": sys.executable,
            "args": [MCP_SERVER],
            "timeouts": {"probe_interval": None},
        }
        config.write_text(json.dumps({"mcpServers": {"s": server}}))
        gateway = StdioServerParameters(
            command=sys.executable, args=["-m", "mcpvisor", "serve", str(config), "--stdio"]
        )
        async with Client(gateway) as through, Client(raw_params(MCP_SERVER)) as direct:
            ours, raw = await _rounds(
                cfg,
                lambda: through.call_tool("add", _ARGS),
                lambda: direct.call_tool("add", _ARGS),
            )
    return _outcome(14, "stdio", ours, raw, "the gateway is a subprocess fronting one server")


async def http(cfg: Config) -> Outcome:
    """15: call_tool latency through the gateway over streamable HTTP vs the server directly."""
    from mcpvisor.gateway import Gateway, HttpSettings, serve_http

    spec = mv.SupervisorSpec(servers=[stdio_spec("s", MCP_SERVER)])
    async with mv.open_supervisor(spec) as client, trio.open_nursery() as nursery:
        gateway = Gateway(client)
        await nursery.start(gateway.run)
        url = await nursery.start(serve_http, gateway, HttpSettings())
        async with Client(f"{url}/mcp") as through, Client(raw_params(MCP_SERVER)) as direct:
            ours, raw = await _rounds(
                cfg,
                lambda: through.call_tool("add", _ARGS),
                lambda: direct.call_tool("add", _ARGS),
            )
        gateway.close_listeners()
        nursery.cancel_scope.cancel()
    return _outcome(15, "streamable HTTP", ours, raw, "gateway in this process on 127.0.0.1")
