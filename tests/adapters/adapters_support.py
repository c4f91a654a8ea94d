"""Waiting for a crash to be noticed, from asyncio, through the lifecycle events."""

from __future__ import annotations

import asyncio
import os
import signal

import mcpvisor as mv
import mcpvisor.aio


async def kill_and_wait_for_restart(client: mcpvisor.aio.SupervisorClient, server: str) -> int:
    """SIGKILL ``server``'s process and return once mcpvisor has it ACTIVE again; its old pid."""
    pid = client.status().servers[server].pid
    assert pid is not None
    async with client.subscribe() as events:
        os.kill(pid, signal.SIGKILL)
        async with asyncio.timeout(30):
            async for event in events:
                if (
                    isinstance(event, mv.LifecycleEvent)
                    and event.server == server
                    and event.new is mv.ServerState.ACTIVE
                ):
                    break
    return pid


async def kill_and_wait_for_failure(client: mcpvisor.aio.SupervisorClient, server: str) -> int:
    """SIGKILL ``server``'s process and return once mcpvisor noticed (before it is back)."""
    pid = client.status().servers[server].pid
    assert pid is not None
    async with client.subscribe() as events:
        os.kill(pid, signal.SIGKILL)
        async with asyncio.timeout(30):
            async for event in events:
                if (
                    isinstance(event, mv.LifecycleEvent)
                    and event.server == server
                    and event.old is mv.ServerState.ACTIVE
                ):
                    break
    return pid
