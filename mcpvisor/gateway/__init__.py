"""The gateway: every supervised server as one MCP server, over stdio or streamable HTTP.

``mcpvisor serve CONFIG --stdio | --http HOST:PORT`` runs it; a host can also build one on
its own handle::

    async with mv.open_supervisor(spec) as client, trio.open_nursery() as nursery:
        gateway = Gateway(client)
        await nursery.start(gateway.run)
        await nursery.start(serve_http, gateway, HttpSettings(port=8080))

HTTP needs the ``gateway`` extra (``pip install 'mcpvisor[gateway]'``, for hypercorn). Names
load on first use, so the command line's parser does not import the SDK's server side.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mcpvisor.gateway.http import HttpSettings, build_app, serve_http
    from mcpvisor.gateway.options import GatewayOptions, ToolFilter, parse_options, read_options
    from mcpvisor.gateway.server import Gateway

_HOMES = {
    "Gateway": "server",
    "GatewayOptions": "options",
    "ToolFilter": "options",
    "parse_options": "options",
    "read_options": "options",
    "HttpSettings": "http",
    "build_app": "http",
    "serve_http": "http",
}

__all__ = [
    "Gateway",
    "GatewayOptions",
    "HttpSettings",
    "ToolFilter",
    "build_app",
    "parse_options",
    "read_options",
    "serve_http",
]


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'mcpvisor.gateway' has no attribute {name!r}")
    return getattr(import_module(f"mcpvisor.gateway.{home}"), name)
