"""Model-based: the real Supervisor's event log equals the lifecycle core's prediction.

Hypothesis draws a schedule (servers with their policies, crashes, manual commands and
requests at random times). The schedule runs against a real Supervisor with in-process fake
servers under MockClock, and is also simulated directly on the pure core, with the fakes
modelled exactly: a start finishes at the instant it begins, unless the fake is set to refuse
it. Both must produce the same events per server, refuse the same commands, resolve every
request by its deadline with a result or a typed error, and never let a request reach a
server that is not ACTIVE.
"""

from __future__ import annotations

import contextlib
import heapq
import random
from typing import Any

import attrs
import trio
import trio.testing
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import mcpvisor as mv
from mcpvisor.supervisor import lifecycle as core
from tests.supervisor.fakes import FakeServer

SERVERS = ("a", "b", "c")
COMMANDS = ("restart", "drop", "revive", "stop")
DEADLINE = 3.0


@attrs.frozen
class Action:
    at: float
    kind: str  # "crash" | a command | "request"
    server: str


policies = st.builds(
    mv.RestartPolicy,
    restart=st.sampled_from(["permanent", "transient", "temporary"]),
    max_restarts=st.integers(0, 3),
    within=st.sampled_from([5.0, 30.0]),
    backoff=st.builds(
        mv.Backoff,
        initial=st.sampled_from([0.5, 1.0]),
        max=st.just(4.0),
        multiplier=st.just(2.0),
        jitter=st.just(0.0),
    ),
    reset_after=st.sampled_from([1.0, 10.0]),
)


@st.composite
def schedules(draw: st.DrawFn) -> tuple[dict[str, tuple[mv.RestartPolicy, int]], list[Action]]:
    names = SERVERS[: draw(st.integers(1, len(SERVERS)))]
    servers = {n: (draw(policies), draw(st.integers(0, 2))) for n in names}
    times = draw(st.lists(st.integers(1, 400), min_size=1, max_size=14, unique=True))
    actions = [
        Action(
            at=t / 20 + 0.013,
            kind=draw(st.sampled_from(("crash", "crash", "request", *COMMANDS))),
            server=draw(st.sampled_from(names)),
        )
        for t in sorted(times)
    ]
    return servers, actions


Entry = tuple[str, Any, Any, str]


def predict(
    servers: dict[str, tuple[mv.RestartPolicy, int]], actions: list[Action], end: float
) -> tuple[dict[str, list[Entry]], list[bool], list[float]]:
    """Run the schedule on the pure core with exact models of the fakes."""
    refusals_left = {n: fails for n, (_, fails) in servers.items()}
    members = [core.Member(name=n, policy=p) for n, (p, _) in servers.items()]
    log: dict[str, list[Entry]] = {n: [] for n in servers}
    refused: list[bool] = []
    timer_times: list[float] = []
    queue: list[tuple[float, int, Any]] = []
    seq = 0

    def push(at: float, item: Any) -> None:
        nonlocal seq
        seq += 1
        heapq.heappush(queue, (at, seq, item))

    def apply(decision: core.Decision, at: float) -> core.Lifecycle:
        for event in decision.events:
            if event.kind == "state":
                log[event.server].append((event.server, event.old, event.new, event.reason))
        for command in decision.commands:
            if isinstance(command, core.StartServer):
                if refusals_left[command.server] > 0:
                    refusals_left[command.server] -= 1
                    push(at, core.StartFailed(command.server, at, "refused"))
                else:
                    push(at, core.Started(command.server, at))
            elif isinstance(command, core.ScheduleRestart):
                timer_times.append(at + command.delay)
                push(
                    at + command.delay,
                    core.TimerFired(command.server, at + command.delay, command.token),
                )
        return decision.state

    draw = random.Random(0).random
    life = apply(core.Lifecycle.initial(members, {}, 0.0), 0.0)
    for action in actions:
        push(action.at, action)
    while queue and queue[0][0] <= end:
        at, _, item = heapq.heappop(queue)
        if isinstance(item, Action):
            if item.kind == "request":
                continue
            if item.kind == "crash":
                if life.state_of(item.server) is mv.ServerState.ACTIVE:
                    push(at, core.Exited(item.server, at, "abnormal", "crashed"))
                continue
            command = {
                "restart": core.RestartNow,
                "drop": core.Drop,
                "revive": core.Revive,
                "stop": core.Stop,
            }[item.kind]
            try:
                life = apply(life.step(command(item.server, at), draw), at)
                refused.append(False)
            except mv.CommandRefusedError:
                refused.append(True)
            continue
        life = apply(life.step(item, draw), at)
    return log, refused, timer_times


async def observe(
    servers: dict[str, tuple[mv.RestartPolicy, int]], actions: list[Action], end: float
) -> tuple[dict[str, list[Entry]], list[bool], list[str]]:
    fakes = {n: FakeServer(n, fail_starts=fails) for n, (_, fails) in servers.items()}
    no_probe = mv.Timeouts(probe_interval=None, request=DEADLINE)
    spec = mv.SupervisorSpec(
        servers=[fakes[n].spec(restart=p, timeouts=no_probe) for n, (p, _) in servers.items()]
    )
    supervisor = mv.Supervisor(spec, rng=random.Random(0))
    log: dict[str, list[Entry]] = {n: [] for n in servers}
    refused: list[bool] = []
    problems: list[str] = []
    t0 = trio.current_time()

    async def record(events: mv.Subscription) -> None:
        async for event in events:
            assert isinstance(event, mv.LifecycleEvent), event
            if event.kind == "state" and event.at - t0 <= end + 1e-6:
                log[event.server].append((event.server, event.old, event.new, event.reason))

    async def request(client: mv.SupervisorClient, server: str) -> None:
        start = trio.current_time()
        typed = (mv.ServerUnavailableError, mv.RequestInterruptedError, mv.RequestTimeoutError)
        with contextlib.suppress(*typed):
            await client.call_tool(server, "add", {"a": 1, "b": 2})
        if trio.current_time() - start > DEADLINE + 1e-6:
            problems.append(f"request to {server} outlived its deadline")

    async with trio.open_nursery() as nursery, supervisor.subscribe(buffer=10_000) as events:
        nursery.start_soon(record, events)
        client: mv.SupervisorClient = await nursery.start(supervisor.run)

        def guard(name: str) -> None:
            state = client.status().servers[name].state
            if state is not mv.ServerState.ACTIVE:
                problems.append(f"a request reached {name} while {state.value}")

        for name, fake in fakes.items():
            fake.on_call = lambda name=name: guard(name)  # type: ignore[misc]
        async with trio.open_nursery() as requests:
            for action in actions:
                await trio.sleep_until(t0 + action.at)
                if action.kind == "crash":
                    fakes[action.server].crash()
                elif action.kind == "request":
                    requests.start_soon(request, client, action.server)
                else:
                    method = getattr(client, action.kind)
                    try:
                        await method(action.server)
                        refused.append(False)
                    except mv.CommandRefusedError:
                        refused.append(True)
            await trio.sleep_until(t0 + end + 1)
        await client.aclose()
    return log, refused, problems


@settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(schedules())
def test_the_runtime_follows_the_core(
    schedule: tuple[dict[str, tuple[mv.RestartPolicy, int]], list[Action]],
) -> None:
    servers, actions = schedule
    end = actions[-1].at + 30
    expected, expected_refusals, timer_times = predict(servers, actions, end)
    # Two things due at the same instant may happen in either order for real; skip those.
    assume(all(abs(t - a.at) > 1e-3 for t in timer_times for a in actions))
    clock = trio.testing.MockClock(autojump_threshold=0)
    observed, refusals, problems = trio.run(observe, servers, actions, end, clock=clock)
    assert problems == []
    assert refusals == expected_refusals
    assert observed == expected
