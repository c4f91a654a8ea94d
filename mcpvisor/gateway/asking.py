"""The servers' questions (sampling, elicitation, roots) relayed to the gateway's clients.

Placeholder for the relay: until it lands, unrouted questions are refused and no routed
handlers are passed with calls.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import mcp_types as types
from mcp.server.context import ServerRequestContext

from mcpvisor.specs.handlers import ClientHandlers, HandlerContext

if TYPE_CHECKING:
    from mcpvisor.gateway.server import Gateway


class Asking:
    """Relays one gateway's questions."""

    def __init__(self, gateway: Gateway) -> None:
        self._gateway = gateway

    def handlers_for(self, ctx: ServerRequestContext[Any]) -> ClientHandlers | None:
        """The routed handlers for the downstream request serving ``ctx``, or None."""
        return None

    async def unrouted(self, ctx: HandlerContext, kind: str, params: Any) -> Any:
        """Answer a question no gateway request claimed."""
        return types.ErrorData(code=types.INVALID_REQUEST, message=f"{kind} is not relayed")

    async def roots(self, ctx: HandlerContext) -> list[types.Root]:
        """The roots a downstream server may use."""
        return []
