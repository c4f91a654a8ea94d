"""A subscriber that never reads cannot slow supervision down, and learns exactly what it missed.

Runs a restart storm on in-process servers in virtual time twice, with and without a stalled
subscriber: every event, at the same virtual instant, must come out the same.
"""

from __future__ import annotations

import random
from contextlib import AsyncExitStack

import trio
import trio.testing

import mcpvisor as mv
from tests.supervisor.fakes import FakeServer

CRASHES = 12
BUFFER = 7
POLICY = mv.RestartPolicy(
    max_restarts=1000,
    within=60,
    reset_after=30,
    backoff=mv.Backoff(initial=0.5, max=8, multiplier=2, jitter=0.5),
)

Record = tuple[str, object, object, str, float, int | None, float | None]


def _record(event: mv.LifecycleEvent) -> Record:
    return (event.server, event.old, event.new, event.reason, event.at, event.attempt, event.delay)


async def _storm(
    stalled_buffer: int | None,
) -> tuple[list[Record], list[mv.LifecycleEvent | mv.EventsLost]]:
    """Crash a server CRASHES times, each time once it is back; return what was seen."""
    fake = FakeServer("alpha")
    # Handshake-era sessions: the records compared are the lifecycle's alone, whatever the era
    # adds (a stdio or HTTP 2026-07-28 session refetches after its listen acknowledgment).
    spec = mv.SupervisorSpec(
        servers=[
            fake.spec(restart=POLICY, protocol="legacy"),
            FakeServer("beta").spec(protocol="legacy"),
        ]
    )
    stalled_view: list[mv.LifecycleEvent | mv.EventsLost] = []
    # Virtual time: a supervisor that waited on the stalled subscriber would jump to this.
    with trio.fail_after(3600):
        return await _crash_repeatedly(fake, spec, stalled_buffer, stalled_view)


async def _crash_repeatedly(
    fake: FakeServer,
    spec: mv.SupervisorSpec,
    stalled_buffer: int | None,
    stalled_view: list[mv.LifecycleEvent | mv.EventsLost],
) -> tuple[list[Record], list[mv.LifecycleEvent | mv.EventsLost]]:
    async with mv.open_supervisor(spec, rng=random.Random(7)) as client, AsyncExitStack() as stack:
        stalled = None
        if stalled_buffer is not None:
            stalled = await stack.enter_async_context(client.subscribe(buffer=stalled_buffer))
        seen: list[Record] = []
        async with client.subscribe(buffer=10_000) as recorder:
            for _ in range(CRASHES):
                fake.crash()
                async for event in recorder:
                    assert isinstance(event, mv.LifecycleEvent)
                    seen.append(_record(event))
                    if event.new is mv.ServerState.ACTIVE:
                        break
        if stalled is not None and stalled_buffer is not None:
            assert stalled.pending == stalled_buffer
            for _ in range(stalled_buffer + 1):
                stalled_view.append(await stalled.__anext__())
        assert client.status().servers["beta"].state is mv.ServerState.ACTIVE
        assert await client.call_tool("beta", "echo", {"text": "up"}, timeout=5)
    return seen, stalled_view


def _in_virtual_time(
    stalled_buffer: int | None,
) -> tuple[list[Record], list[mv.LifecycleEvent | mv.EventsLost]]:
    """One storm in a fresh ``trio.run`` whose MockClock starts at 0, like the other's."""
    clock = trio.testing.MockClock(autojump_threshold=0)
    return trio.run(_storm, stalled_buffer, clock=clock)


def test_a_stalled_subscriber_changes_nothing_and_counts_its_losses() -> None:
    alone, _ = _in_virtual_time(None)
    beside, stalled = _in_virtual_time(BUFFER)
    # Three events per crash: FAILED, STARTING after the backoff, ACTIVE.
    assert len(alone) == 3 * CRASHES
    assert len({at for *_, at, _, _ in alone}) > CRASHES  # restarts really spread over time
    assert beside == alone
    assert stalled[0] == mv.EventsLost(len(alone) - BUFFER)
    tail = stalled[1:]
    assert all(isinstance(e, mv.LifecycleEvent) for e in tail)
    assert [_record(e) for e in tail if isinstance(e, mv.LifecycleEvent)] == alone[-BUFFER:]
