"""Helpers for supervisor tests: wait for a status condition by listening to events."""

from __future__ import annotations

from collections.abc import Callable

import trio

import mcpvisor as mv

QUICK = mv.RestartPolicy(
    max_restarts=3, within=60, backoff=mv.Backoff(initial=0.05, max=0.2, jitter=0.0)
)
"""A restart policy that gives up quickly and waits little, for tests."""


async def until(
    client: mv.SupervisorClient,
    ready: Callable[[mv.SupervisorStatus], bool],
    *,
    limit: float = 60.0,
) -> mv.SupervisorStatus:
    """Wait until ``ready(status)`` holds, re-checking on every lifecycle event.

    ``limit`` only stops a broken test from hanging; nothing asserts how long this takes.
    """
    with trio.fail_after(limit):
        async with client.subscribe() as events:
            status = client.status()
            if ready(status):
                return status
            async for _ in events:
                status = client.status()
                if ready(status):
                    return status
    raise AssertionError("the supervisor closed before the condition held")


def state_is(name: str, state: mv.ServerState) -> Callable[[mv.SupervisorStatus], bool]:
    return lambda status: name in status.servers and status.servers[name].state is state
