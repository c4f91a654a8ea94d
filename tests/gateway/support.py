"""Running a gateway for a test: real servers under a real supervisor, a real HTTP listener."""

from __future__ import annotations

import json
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path
from typing import Any

import attrs
import trio

import mcpvisor as mv
from mcpvisor.gateway import Gateway, GatewayOptions, HttpSettings, open_gateway, serve_http
from tests.conftest import RAW_SERVER

DOWNSTREAM = Path(__file__).with_name("downstream.py")
GATEWAY_TIMEOUT = 60.0
"""Only stops a broken test from hanging: real subprocesses are slow on a loaded machine."""


def downstream(name: str = "d", *, marker: Path | None = None, **fields: Any) -> mv.StdioSpec:
    """The gateway tests' MCPServer (tests/gateway/downstream.py) as a stdio server spec."""
    args = [str(DOWNSTREAM)] + (["--marker", str(marker)] if marker is not None else [])
    return mv.StdioSpec(name=name, command=sys.executable, args=args, **fields)


def raw(name: str = "r", **fields: Any) -> mv.StdioSpec:
    """The fast raw JSON-RPC server as a stdio server spec."""
    return mv.StdioSpec(name=name, command=sys.executable, args=[str(RAW_SERVER)], **fields)


def config_file(tmp: Path, spec: mv.SupervisorSpec, gateway: dict[str, Any] | None = None) -> Path:
    """``spec`` written as a Claude Desktop config file, with a ``mcpvisor.gateway`` section."""
    data: dict[str, Any] = mv.dump_config(spec)
    if gateway is not None:
        data.setdefault("mcpvisor", {})["gateway"] = gateway
    path = tmp / "config.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


@attrs.frozen
class Running:
    client: mv.SupervisorClient
    gateway: Gateway
    url: str
    """The gateway's base URL, ``http://127.0.0.1:PORT``."""

    @property
    def mcp_url(self) -> str:
        return f"{self.url}/mcp"


@asynccontextmanager
async def http_gateway(
    spec: mv.SupervisorSpec,
    options: GatewayOptions | None = None,
    settings: HttpSettings | None = None,
    metrics_app: Any = None,
    **gateway_args: Any,
) -> AsyncIterator[Running]:
    """A supervisor for ``spec`` and its gateway (relay installed) on 127.0.0.1, ephemeral port."""
    async with open_gateway(spec, options, **gateway_args) as gateway, trio.open_nursery() as n:
        url = await n.start(
            partial(serve_http, metrics_app=metrics_app), gateway, settings or HttpSettings()
        )
        yield Running(gateway.client, gateway, url)
        n.cancel_scope.cancel()


async def wait_for(predicate: Callable[[], bool], *, limit: float = GATEWAY_TIMEOUT) -> None:
    """Poll ``predicate`` (for what another process does, which sends no event here)."""
    with trio.fail_after(limit):
        while not predicate():  # noqa: ASYNC110 - another process's doing: nothing to wait on
            await trio.sleep(0.02)


class Notices:
    """Collects the method names of the notifications an SDK client receives."""

    def __init__(self) -> None:
        self.methods: list[str] = []
        self._changed = trio.Event()

    async def __call__(self, message: Any) -> None:
        method = getattr(message, "method", None)
        if isinstance(method, str):
            self.methods.append(method)
        self._changed.set()
        self._changed = trio.Event()

    async def wait_for(self, method: str, count: int = 1) -> None:
        with trio.fail_after(GATEWAY_TIMEOUT):
            while self.methods.count(method) < count:
                await self._changed.wait()
