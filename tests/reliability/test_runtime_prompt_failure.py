"""Under full load, a host command or a crash fails every caller at once (#12 item 4).

The server's session takes 100 s to close (mock clock), so a caller that waited for the
worker's teardown would see its error 100 s late; every caller must get its answer at the
moment of the command or the crash.
"""

from __future__ import annotations

import os
import signal
import sys
from typing import Any

import pytest
import trio
import trio.testing

import mcpvisor as mv
from tests.conftest import RAW_SERVER
from tests.supervisor.fakes import FakeServer
from tests.supervisor.support import QUICK, state_is, until

TEARDOWN = 100.0
IN_FLIGHT = 2
QUEUED = 3


def loaded_server() -> tuple[FakeServer, mv.SupervisorSpec]:
    a = FakeServer("alpha")
    a.slow_teardown = TEARDOWN
    spec = mv.SupervisorSpec(
        servers=[
            a.spec(
                restart=QUICK,
                max_concurrency=IN_FLIGHT,
                timeouts=mv.Timeouts(request=1000, shutdown=5),
            )
        ]
    )
    return a, spec


class Callers:
    """``wait`` calls whose outcomes (and when they came) are recorded by index."""

    def __init__(self, client: mv.SupervisorClient) -> None:
        self.client = client
        self.outcomes: dict[int, tuple[object, float]] = {}

    async def call(self, index: int) -> None:
        try:
            result: object = await self.client.call_tool("alpha", "wait", {})
        except mv.MCPVisorError as error:
            result = error
        self.outcomes[index] = (result, trio.current_time())

    def failed_at(self, moment: float) -> list[type[BaseException]]:
        kinds = []
        for result, at in self.outcomes.values():
            assert isinstance(result, BaseException), result
            assert at - moment < 1.0, f"{result!r} came {at - moment:g}s after the loss"
            kinds.append(type(result))
        return kinds


async def load(client: mv.SupervisorClient, a: FakeServer, nursery: trio.Nursery) -> Callers:
    callers = Callers(client)
    for index in range(IN_FLIGHT + QUEUED):
        nursery.start_soon(callers.call, index)
    await trio.testing.wait_all_tasks_blocked()
    assert a.calls == IN_FLIGHT, "the rest wait in the worker's queue"
    return callers


@pytest.mark.parametrize("command", ["stop", "drop", "remove_server"])
async def test_a_command_fails_in_flight_and_queued_callers_at_once(
    command: str, autojump_clock: Any
) -> None:
    a, spec = loaded_server()
    async with mv.open_supervisor(spec) as client:
        async with trio.open_nursery() as nursery:
            callers = await load(client, a, nursery)
            moment = trio.current_time()
            nursery.start_soon(getattr(client, command), "alpha")
            await trio.testing.wait_all_tasks_blocked()
            status = client.status().servers.get("alpha")
            assert status is None or status.state is not mv.ServerState.ACTIVE
            assert len(callers.outcomes) == IN_FLIGHT + QUEUED
            assert a.teardowns_done == 0, "the old session is still closing"
        kinds = callers.failed_at(moment)
        assert kinds.count(mv.RequestInterruptedError) == IN_FLIGHT
        assert kinds.count(mv.ServerUnavailableError) == QUEUED, "queued calls were never sent"
        assert a.calls == IN_FLIGHT


async def test_a_restart_fails_in_flight_callers_at_once_and_serves_the_queued_ones(
    autojump_clock: Any,
) -> None:
    a, spec = loaded_server()
    async with mv.open_supervisor(spec) as client:
        async with trio.open_nursery() as nursery:
            callers = await load(client, a, nursery)
            moment = trio.current_time()
            await client.restart("alpha")
            assert client.status().servers["alpha"].state is not mv.ServerState.ACTIVE
            await trio.testing.wait_all_tasks_blocked()
            assert a.teardowns_done == 0, "the old session is still closing"
            interrupted = dict(callers.outcomes)
            assert len(interrupted) == IN_FLIGHT
            for result, at in interrupted.values():
                assert isinstance(result, mv.RequestInterruptedError) and result.sent
                assert at - moment < 1.0
            # The new session waits for the old one to end (never two at once), but no longer
            # than the shutdown bound (5 s) this session overstays; then it takes the queue.
            assert a.sessions == 1
            await until(client, state_is("alpha", mv.ServerState.ACTIVE))
            assert 5.0 <= trio.current_time() - moment < 10.0
            assert a.sessions == 2 and a.teardowns_done == 0
            await trio.testing.wait_all_tasks_blocked()
            assert a.calls == IN_FLIGHT + min(QUEUED, IN_FLIGHT)
            a.release.set()
        served = [r for r, _ in callers.outcomes.values() if not isinstance(r, BaseException)]
        assert len(served) == QUEUED


async def test_a_lost_session_fails_in_flight_callers_before_teardown_finishes(
    procs: Any,
) -> None:
    """A stopped (SIGSTOP) stdio server misses its probe: the session is known lost, and its
    callers fail then, while the teardown still waits ``shutdown`` seconds to SIGKILL it. It
    still runs meanwhile (it may hold a port or a lock), so its replacement waits for that."""
    shutdown = 4.0
    spec = mv.SupervisorSpec(
        servers=[
            mv.StdioSpec(
                name="frozen",
                command=sys.executable,
                args=(str(RAW_SERVER),),
                restart=mv.RestartPolicy(max_restarts=3, backoff=mv.Backoff(initial=0)),
                timeouts=mv.Timeouts(
                    connect=30,
                    initialize=30,
                    request=60,
                    shutdown=shutdown,
                    probe_interval=0.5,
                    probe_timeout=0.5,
                    probe_misses=1,
                ),
            )
        ]
    )
    reached = trio.Event()

    async def progress(*_: object) -> None:
        reached.set()

    outcome: list[tuple[BaseException, float]] = []
    answered = trio.Event()

    async def hang() -> None:
        try:
            await client.call_tool("frozen", "hang", {}, progress=progress)
        except mv.MCPVisorError as error:
            outcome.append((error, trio.current_time()))
        answered.set()

    async with mv.open_supervisor(spec) as client:
        pid = client.status().servers["frozen"].pid
        assert pid is not None
        async with trio.open_nursery() as nursery:
            nursery.start_soon(hang)
            with trio.fail_after(30):
                await reached.wait()
            stopped_at = trio.current_time()
            os.kill(pid, signal.SIGSTOP)
            try:
                with trio.fail_after(30):
                    await answered.wait()
                ((error, at),) = outcome
                assert isinstance(error, mv.RequestInterruptedError) and error.sent
                assert procs.pid_alive(pid), "the teardown has not killed it yet"
                assert at - stopped_at < shutdown
                # The runtime heard of the loss when the worker did, not after its teardown:
                # the status says so, and the replacement waits for the old one to be gone.
                status = client.status().servers["frozen"]
                assert status.pid != pid and status.restarts == 1
                replaced = await until(client, state_is("frozen", mv.ServerState.ACTIVE))
                assert replaced.servers["frozen"].pid not in (None, pid)
                assert not procs.pid_alive(pid), "the replacement overlapped the old process"
            finally:
                if procs.pid_alive(pid):
                    os.kill(pid, signal.SIGCONT)
