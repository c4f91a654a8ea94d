"""Waiting for a crash to be noticed, from asyncio, through the lifecycle events."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Callable

import mcpvisor as mv
import mcpvisor.aio


async def _kill_and_wait(
    client: mcpvisor.aio.SupervisorClient,
    server: str,
    seen: Callable[[mv.LifecycleEvent], bool],
) -> int:
    """SIGKILL ``server``'s process, return its old pid once an event of it satisfies ``seen``."""
    pid = client.status().servers[server].pid
    assert pid is not None
    async with client.subscribe() as events:
        os.kill(pid, signal.SIGKILL)
        async with asyncio.timeout(30):
            async for event in events:
                if isinstance(event, mv.LifecycleEvent) and event.server == server and seen(event):
                    break
    return pid


async def kill_and_wait_for_restart(client: mcpvisor.aio.SupervisorClient, server: str) -> int:
    """SIGKILL ``server``'s process and return once mcpvisor has it ACTIVE again; its old pid."""
    return await _kill_and_wait(client, server, lambda e: e.new is mv.ServerState.ACTIVE)


async def kill_and_wait_for_failure(client: mcpvisor.aio.SupervisorClient, server: str) -> int:
    """SIGKILL ``server``'s process and return once mcpvisor noticed (before it is back)."""
    return await _kill_and_wait(client, server, lambda e: e.old is mv.ServerState.ACTIVE)
