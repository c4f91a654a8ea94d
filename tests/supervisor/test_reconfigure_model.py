"""Model-based: random reconfigurations of a running Supervisor follow the core's prediction.

Hypothesis draws a sequence of configurations (which of five servers exist, in which order,
in which group, with which session-shaping field and which restart policy) and crashes in
between. The sequence runs against a real Supervisor with in-process fake servers under
MockClock, and is simulated on the pure core through ``plan_reconfigure`` and
``core_input``, with the fakes modelled exactly (a start is ready at the instant it begins).
Both must produce the same state events per server, the same reload summaries, and the same
number of sessions per server: a server the plan leaves alone is never started again.
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
from mcpvisor.supervisor.reconfigure import core_input, plan_reconfigure
from tests.supervisor.fakes import FakeServer

NAMES = ("a", "b", "c", "d", "e")
NO_PROBE = mv.Timeouts(probe_interval=None, request=5.0)


@attrs.frozen
class Layout:
    """One configuration: per server (group, max_concurrency, max_restarts), in order."""

    servers: tuple[tuple[str, str | None, int, int], ...]
    strategy: str


@attrs.frozen
class Step:
    at: float
    kind: str  # "reconfigure" | "crash"
    layout: Layout | None = None
    server: str = ""


layouts = st.builds(
    lambda picked, data, strategy: Layout(tuple((n, *data[n]) for n in picked), strategy),
    st.lists(st.sampled_from(NAMES), unique=True, min_size=1, max_size=5),
    st.fixed_dictionaries(
        {
            n: st.tuples(
                st.sampled_from([None, "g"]), st.sampled_from([8, 16]), st.sampled_from([1, 3])
            )
            for n in NAMES
        }
    ),
    st.sampled_from(["one_for_all", "rest_for_one", "one_for_one"]),
)


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[Layout, list[Step]]:
    first = draw(layouts)
    times = sorted(draw(st.lists(st.integers(1, 200), min_size=1, max_size=10, unique=True)))
    steps = []
    for t in times:
        if draw(st.booleans()):
            steps.append(Step(t / 10 + 0.013, "reconfigure", layout=draw(layouts)))
        else:
            steps.append(Step(t / 10 + 0.013, "crash", server=draw(st.sampled_from(NAMES))))
    return first, steps


def spec_of(layout: Layout, fakes: dict[str, Any] | None = None) -> mv.SupervisorSpec:
    servers = []
    for name, group, concurrency, max_restarts in layout.servers:
        policy = mv.RestartPolicy(
            max_restarts=max_restarts,
            within=10.0,
            backoff=mv.Backoff(initial=0.5, max=2.0, jitter=0.0),
        )
        fields = dict(
            name=name,
            group=group,
            max_concurrency=concurrency,
            restart=policy,
            timeouts=NO_PROBE,
        )
        if fakes is None:
            servers.append(mv.InProcessSpec(server=_PLACEHOLDER, **fields))  # type: ignore[arg-type]
        else:
            servers.append(fakes[name].spec(**{k: v for k, v in fields.items() if k != "name"}))
    return mv.SupervisorSpec(servers=servers, groups={"g": layout.strategy})


_PLACEHOLDER = FakeServer("placeholder").server

Entry = tuple[str, Any, Any, str]


def predict(
    first: Layout, steps: list[Step], end: float
) -> tuple[dict[str, list[Entry]], list[str], dict[str, int], list[float]]:
    log: dict[str, list[Entry]] = {n: [] for n in NAMES}
    summaries: list[str] = []
    starts = dict.fromkeys(NAMES, 0)
    timers: list[float] = []
    queue: list[tuple[float, int, Any]] = []
    seq = 0

    def push(at: float, item: Any) -> None:
        nonlocal seq
        seq += 1
        heapq.heappush(queue, (at, seq, item))

    def apply(decision: core.Decision, at: float) -> core.Lifecycle:
        for e in decision.events:
            if e.kind == "state":
                log[e.server].append((e.server, e.old, e.new, e.reason))
        for c in decision.commands:
            if isinstance(c, core.StartServer):
                starts[c.server] += 1
                push(at, core.Started(c.server, at))
            elif isinstance(c, core.ScheduleRestart):
                timers.append(at + c.delay)
                push(at + c.delay, core.TimerFired(c.server, at + c.delay, c.token))
        return decision.state

    draw = random.Random(0).random
    spec = spec_of(first)
    life = apply(core.Lifecycle.from_spec(spec, 0.0), 0.0)
    for step in steps:
        push(step.at, step)
    while queue and queue[0][0] <= end:
        at, _, item = heapq.heappop(queue)
        if isinstance(item, Step):
            if item.kind == "crash":
                if (
                    item.server in life.names
                    and life.state_of(item.server) is mv.ServerState.ACTIVE
                ):
                    push(at, core.Exited(item.server, at, "abnormal", "crashed"))
                continue
            assert item.layout is not None
            new = spec_of(item.layout)
            report = plan_reconfigure(spec, new)
            summaries.append(report.summary())
            life = apply(life.step(core_input(report, new, (), at), draw), at)
            spec = new
            continue
        # A report about a server removed meanwhile: the runtime drops it.
        with contextlib.suppress(core.UnknownServerRefusedError):
            life = apply(life.step(item, draw), at)
    return log, summaries, starts, timers


async def observe(
    first: Layout, steps: list[Step], end: float
) -> tuple[dict[str, list[Entry]], list[str], dict[str, int]]:
    fakes = {n: FakeServer(n) for n in NAMES}
    supervisor = mv.Supervisor(spec_of(first, fakes), rng=random.Random(0))
    log: dict[str, list[Entry]] = {n: [] for n in NAMES}
    summaries: list[str] = []
    t0 = trio.current_time()

    async def record(events: mv.Subscription) -> None:
        async for e in events:
            assert isinstance(e, mv.LifecycleEvent), e
            if e.at - t0 > end + 1e-6:
                continue
            if e.kind == "state":
                log[e.server].append((e.server, e.old, e.new, e.reason))
            elif e.kind == "reload":
                assert e.server == "*" and e.reason == "applied"
                summaries.append(e.cause or "")

    async with trio.open_nursery() as nursery, supervisor.subscribe(buffer=10_000) as events:
        nursery.start_soon(record, events)
        client: mv.SupervisorClient = await nursery.start(supervisor.run)
        for step in steps:
            await trio.sleep_until(t0 + step.at)
            if step.kind == "crash":
                fakes[step.server].crash()
            else:
                assert step.layout is not None
                # The starts it waits for are instantaneous: no virtual time passes.
                report = await client.reconfigure(spec_of(step.layout, fakes))
                assert abs(trio.current_time() - (t0 + step.at)) < 1e-6
                assert set(report.restarted) | set(report.added) | set(report.unchanged) | set(
                    report.updated
                ) == {s[0] for s in step.layout.servers}
        await trio.sleep_until(t0 + end + 1)
        await client.aclose()
    return log, summaries, {n: f.sessions for n, f in fakes.items()}


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(scenarios())
def test_the_runtime_reconfigures_as_the_core_predicts(
    scenario: tuple[Layout, list[Step]],
) -> None:
    first, steps = scenario
    end = steps[-1].at + 20
    expected, expected_summaries, expected_starts, timers = predict(first, steps, end)
    # Two things due at the same instant may happen in either order for real; skip those.
    assume(all(abs(t - s.at) > 1e-3 for t in timers for s in steps))
    clock = trio.testing.MockClock(autojump_threshold=0)
    observed, summaries, sessions = trio.run(observe, first, steps, end, clock=clock)
    assert summaries == expected_summaries
    assert observed == expected
    assert sessions == expected_starts
