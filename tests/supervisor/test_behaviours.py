"""Behaviours of the real runtime that must each fail a test when broken (#12 item 10)."""

from __future__ import annotations

import sys
from typing import Any

import pytest
import trio
import trio.testing
from hypothesis import given
from hypothesis import strategies as st

import mcpvisor as mv
from tests.conftest import RAW_SERVER
from tests.supervisor.fakes import FakeServer
from tests.supervisor.support import QUICK, state_is, until


async def next_event(
    events: mv.Subscription, wanted: Any, *, limit: float = 60.0
) -> mv.LifecycleEvent:
    """The next event ``wanted(event)`` accepts; bounded so a broken behaviour fails."""
    with trio.fail_after(limit):
        async for event in events:
            if isinstance(event, mv.LifecycleEvent) and wanted(event):
                return event
    raise AssertionError("the event stream ended first")


# ---- restart budget and backoff ---------------------------------------------------------------


async def test_a_successful_start_resets_the_count_of_failed_starts(
    autojump_clock: Any,
) -> None:
    # Two failed starts in a row are within budget; a third would drop the server. Restarts
    # are spaced wider than ``within``, so only the consecutive-failed-starts rule can drop it.
    a = FakeServer("alpha", fail_starts=2)
    policy = mv.RestartPolicy(
        max_restarts=2, within=0.5, backoff=mv.Backoff(initial=1, max=1, jitter=0)
    )
    spec = mv.SupervisorSpec(servers=[a.spec(restart=policy)])
    async with mv.open_supervisor(spec) as client:
        await until(client, state_is("alpha", mv.ServerState.ACTIVE))
        assert a.sessions == 3
        a.fail_starts = 2
        a.crash()
        await until(
            client, lambda s: a.sessions == 6 and state_is("alpha", mv.ServerState.ACTIVE)(s)
        )
        status = client.status().servers["alpha"]
        assert status.state is mv.ServerState.ACTIVE, status


@given(
    initial=st.floats(min_value=0, max_value=1e4, allow_subnormal=True),
    extra=st.floats(min_value=0, max_value=1e6),
    multiplier=st.floats(min_value=1, max_value=1e3),
    jitter=st.floats(min_value=0, max_value=1),
    attempt=st.integers(min_value=1, max_value=10**9),
    u=st.floats(min_value=0, max_value=1, exclude_max=True),
)
def test_the_backoff_delay_never_exceeds_its_max(
    initial: float, extra: float, multiplier: float, jitter: float, attempt: int, u: float
) -> None:
    backoff = mv.Backoff(initial=initial, max=initial + extra, multiplier=multiplier, jitter=jitter)
    assert 0 <= backoff.delay(attempt, u) <= backoff.base(attempt) <= backoff.max
    assert backoff.base(attempt) <= backoff.base(attempt + 1)
    if initial > 0 and multiplier >= 1.001:
        # Any real growth reaches the cap long before a billion restarts (a multiplier a hair
        # above 1 grows by 2e-7 over them, and that is right).
        assert backoff.base(10**9) == backoff.max


async def test_scheduled_delays_stay_under_max_however_many_restarts(autojump_clock: Any) -> None:
    a = FakeServer("alpha", fail_starts=40)
    policy = mv.RestartPolicy(
        max_restarts=100,
        within=1,
        backoff=mv.Backoff(initial=0.5, max=3, multiplier=10, jitter=0),
    )
    spec = mv.SupervisorSpec(servers=[a.spec(restart=policy)])
    async with mv.open_supervisor(spec) as client:
        delays: list[float] = []
        attempts: list[int] = []
        async with client.subscribe() as events:
            while len(delays) < 30:
                event = await next_event(events, lambda e: e.new is mv.ServerState.FAILED)
                assert event.delay is not None
                delays.append(event.delay)
                attempts.append(event.attempt)
        assert attempts == list(range(attempts[0], attempts[0] + 30))
        assert delays == [3.0] * 30


# ---- groups in the real runtime ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("strategy", "restarted"),
    [("one_for_all", {"a", "b", "c"}), ("rest_for_one", {"b", "c"}), ("one_for_one", {"b"})],
)
async def test_a_group_strategy_takes_effect_in_the_runtime(
    strategy: str, restarted: set[str], autojump_clock: Any
) -> None:
    fakes = {name: FakeServer(name) for name in ("a", "b", "c")}
    spec = mv.SupervisorSpec(
        servers=[f.spec(restart=QUICK, group="g") for f in fakes.values()],
        groups={"g": strategy},  # type: ignore[dict-item]
    )
    async with mv.open_supervisor(spec) as client:
        fakes["b"].crash()
        await until(client, lambda s: s.servers["b"].restarts == 1 and not s.failed)
        await until(
            client, lambda s: all(x.state is mv.ServerState.ACTIVE for x in s.servers.values())
        )
        assert {n for n, f in fakes.items() if f.sessions == 2} == restarted
        assert {n for n, f in fakes.items() if f.sessions == 1} == {"a", "b", "c"} - restarted
        assert all(f.live == 1 for f in fakes.values())


async def test_a_group_restart_starts_a_sibling_only_once_its_old_session_ended(
    autojump_clock: Any,
) -> None:
    # OTP restarts a child only after it terminated: two sessions of one server at once could
    # fight over a port, a lock or a file.
    fakes = {name: FakeServer(name) for name in ("a", "b", "c")}
    fakes["b"].slow_teardown = 1.0  # within its shutdown bound (5 s)
    spec = mv.SupervisorSpec(
        servers=[f.spec(restart=QUICK, group="g") for f in fakes.values()],
        groups={"g": "one_for_all"},
    )
    async with mv.open_supervisor(spec) as client:
        fakes["a"].crash()
        await until(
            client,
            lambda s: (
                s.servers["b"].restarts == 1
                and all(x.state is mv.ServerState.ACTIVE for x in s.servers.values())
            ),
        )
        b = fakes["b"]
        assert (b.sessions, b.teardowns_started, b.teardowns_done) == (2, 1, 1)
        assert fakes["a"].sessions == fakes["c"].sessions == 2


# ---- list changes and escalation reach subscribers -----------------------------------------


async def test_a_tools_list_change_over_stdio_refreshes_the_handle_and_is_announced() -> None:
    spec = mv.SupervisorSpec(
        servers=[
            mv.StdioSpec(
                name="raw",
                command=sys.executable,
                args=(str(RAW_SERVER),),
                timeouts=mv.Timeouts(connect=30, initialize=30, request=30, probe_interval=None),
            )
        ]
    )
    async with mv.open_supervisor(spec) as client:
        before = {t.qualified_name for t in await client.list_tools()}
        async with client.subscribe() as events:
            await client.call_tool("raw", "change_tools", {})
            event = await next_event(events, lambda e: e.kind == "tools_changed")
        assert event.server == "raw" and event.reason == "tools_changed"
        added = {t.qualified_name for t in await client.list_tools()} - before
        assert len(added) == 1 and next(iter(added)).startswith("raw__extra")
        assert client.status().servers["raw"].tools == len(before) + 1


async def test_escalation_events_reach_subscribers(autojump_clock: Any) -> None:
    # The host's own block is cancelled by the escalation, so the subscriber that must hear
    # of it lives outside the supervisor's nursery, subscribed before run() began.
    a = FakeServer("alpha")
    policy = mv.RestartPolicy(max_restarts=0)
    supervisor = mv.Supervisor(mv.SupervisorSpec(servers=[a.spec(required=True, restart=policy)]))
    seen: list[mv.LifecycleEvent] = []

    async def watch(events: mv.Subscription) -> None:
        seen.append(await next_event(events, lambda e: e.kind == "escalation"))

    async with trio.open_nursery() as outer, supervisor.subscribe() as events:
        outer.start_soon(watch, events)
        raised: list[BaseException] = []
        try:
            async with trio.open_nursery() as nursery:
                await nursery.start(supervisor.run)
                a.crash()
        except* mv.RequiredServerError as group:
            raised.extend(group.exceptions)
    (escalation,) = seen
    assert escalation.server == "alpha" and escalation.new is mv.ServerState.DROPPED
    (error,) = raised
    assert isinstance(error, mv.RequiredServerError) and error.server == "alpha"


# ---- retries and idle shutdown ----------------------------------------------------------------


async def test_an_idempotent_request_is_retried_at_most_once(autojump_clock: Any) -> None:
    a = FakeServer("alpha")
    outcome: list[BaseException] = []
    async with mv.open_supervisor(mv.SupervisorSpec(servers=[a.spec(restart=QUICK)])) as client:

        async def read() -> None:
            try:
                await client.read_resource("alpha", "memo://slow")
            except mv.RequestInterruptedError as error:
                outcome.append(error)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(read)
            for reads in (1, 2):
                with trio.fail_after(30):
                    await a.read_seen.wait()
                a.read_seen = trio.Event()
                assert a.reads == reads
                a.crash()
        await until(client, lambda s: s.servers["alpha"].restarts == 2 and not s.failed)
        await trio.testing.wait_all_tasks_blocked()
        assert a.reads == 2, "a second crash is not retried again"
        (error,) = outcome
        assert error.sent and error.operation == "read_resource"


async def test_a_request_resets_the_idle_shutdown_timer(autojump_clock: Any) -> None:
    a = FakeServer("alpha")
    spec = mv.SupervisorSpec(servers=[a.spec(restart=QUICK, idle_shutdown=10)])
    async with mv.open_supervisor(spec) as client:
        started = trio.current_time()
        await trio.sleep(8)
        await client.call_tool("alpha", "add", {"a": 1, "b": 1})
        last = trio.current_time()
        await trio.sleep(8)
        assert client.status().servers["alpha"].state is mv.ServerState.ACTIVE
        await until(client, state_is("alpha", mv.ServerState.STOPPED))
        stopped = trio.current_time()
        assert stopped - last == pytest.approx(10, abs=0.5)
        assert stopped - started > 15
        assert client.status().servers["alpha"].wakeable
