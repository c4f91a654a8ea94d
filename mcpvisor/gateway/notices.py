"""Resource subscriptions and server log records, relayed to the gateway's clients.

Placeholder for the relay: until it lands, neither is served.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import trio

from mcpvisor.specs.handlers import ServerLog

if TYPE_CHECKING:
    from mcpvisor.gateway.server import Gateway


class Notices:
    """Relays one gateway's resource updates and server logs."""

    def __init__(self, gateway: Gateway) -> None:
        self._gateway = gateway

    def register(self) -> None:
        """Add the request handlers this relay serves to the gateway's ``Server``."""

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Follow the supervisor's resource updates until cancelled."""
        task_status.started()
        await trio.sleep_forever()

    def server_log(self, record: ServerLog) -> None:
        """A downstream server's log record that no gateway request claimed."""
