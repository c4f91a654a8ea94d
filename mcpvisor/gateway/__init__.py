"""The gateway: every supervised server as one MCP server, over stdio or streamable HTTP.

``mcpvisor serve CONFIG --stdio | --http HOST:PORT`` runs it; a host can also build one on
its own handle::

    async with open_gateway(spec) as gateway, trio.open_nursery() as nursery:
        await nursery.start(serve_http, gateway, HttpSettings(port=8080))

``Gateway(client)`` fronts a handle the host already has; :func:`open_gateway` also installs
the relay through which servers ask the gateway's clients.

HTTP needs the ``gateway`` extra (``pip install 'mcpvisor[gateway]'``, for hypercorn). Names
load on first use, so the command line's parser does not import the SDK's server side.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mcpvisor.gateway.http import HttpSettings, build_app, serve_http
    from mcpvisor.gateway.options import GatewayOptions, ToolFilter, parse_options, read_options
    from mcpvisor.gateway.relay import Relay
    from mcpvisor.gateway.server import Gateway, open_gateway

_HOMES = {
    "Gateway": "server",
    "open_gateway": "server",
    "Relay": "relay",
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
    "Relay",
    "ToolFilter",
    "build_app",
    "open_gateway",
    "parse_options",
    "read_options",
    "serve_http",
]


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'mcpvisor.gateway' has no attribute {name!r}")
    return getattr(import_module(f"mcpvisor.gateway.{home}"), name)
