"""The lifecycle core driven by hypothesis through random runs against a fake runtime.

The fake runtime carries out every command (workers, timers) and only reports what a real
one could: ``Started``/``StartFailed`` for a worker it is starting, ``Exited`` for one it has,
``TimerFired`` for a timer it holds. Commands are thrown at random servers, and every
refusal is checked against the brief's table. A small oracle, written from the brief rather
than from the core, predicts which servers a failure touches and how.
"""

from __future__ import annotations

from typing import Any

import hypothesis.strategies as st
from hypothesis import event, settings
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule
from lifecycle_expect import (
    COMMAND_TABLE,
    LIVE,
    PROFILE,
    RUNNING,
    WAKEABLE,
    S,
    in_window,
    wants_restart,
)

from mcpvisor.specs import Backoff, RestartPolicy
from mcpvisor.supervisor.lifecycle import (
    EDGES,
    TRANSITIONS,
    Add,
    CancelRestart,
    CommandRefusedError,
    Decision,
    Drop,
    Escalate,
    Exited,
    Forget,
    IdleTimeout,
    Lifecycle,
    Member,
    Remove,
    RestartNow,
    Revive,
    ScheduleRestart,
    ServerState,
    Started,
    StartFailed,
    StartServer,
    Stop,
    StopServer,
    TimerFired,
    UnknownServerRefusedError,
    Wake,
)

GROUPS = {"all": "one_for_all", "rest": "rest_for_one", "solo": "one_for_one"}
LAYOUT = [
    ("a1", "all"),
    ("a2", "all"),
    ("a3", "all"),
    ("r1", "rest"),
    ("r2", "rest"),
    ("r3", "rest"),
    ("o1", "solo"),
    ("u1", None),
    ("u2", None),
]
EXTRA_NAMES = ["n1", "n2"]
GHOST = "ghost"  # never supervised
COMMANDS = {
    "RestartNow": RestartNow,
    "Drop": Drop,
    "Stop": Stop,
    "Revive": Revive,
    "Wake": Wake,
    "Remove": Remove,
}

backoffs = st.builds(
    lambda initial, extra, multiplier, jitter: Backoff(
        initial=initial, max=initial + extra, multiplier=multiplier, jitter=jitter
    ),
    st.sampled_from([0.0, 0.25, 1.0, 2.0]),
    st.sampled_from([0.0, 1.0, 6.0]),
    st.sampled_from([1.0, 2.0, 3.0]),
    st.sampled_from([0.0, 0.5, 1.0]),
)
policies = st.builds(
    RestartPolicy,
    restart=st.sampled_from(["permanent", "permanent", "transient", "temporary"]),
    max_restarts=st.integers(0, 3),
    within=st.sampled_from([1.0, 2.0, 5.0, 10.0]),
    backoff=backoffs,
    reset_after=st.sampled_from([0.0, 1.0, 3.0, 30.0]),
)
steps = st.sampled_from([0.0, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0]) | st.floats(0, 12)
unit = st.floats(0, 1, exclude_max=True)


class LifecycleMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.now = 0.0
        self.lc: Lifecycle
        self.members: dict[str, Member] = {}
        self.order: list[str] = []  # declared order, as the test understands it
        # What the events say (replayed), and what the fake runtime holds.
        self.state: dict[str, ServerState] = {}
        self.reason: dict[str, str] = {}
        self.workers: dict[str, str] = {}  # name -> "starting" | "up"
        self.timers: dict[int, tuple[str, float, bool]] = {}  # token -> (server, due, cancelled)
        self.token: dict[str, int] = {}  # FAILED server -> the timer it waits on
        # Oracle bookkeeping, reset by a fresh budget.
        self.history: dict[str, list[float]] = {}
        self.streak: dict[str, int] = {}
        self.attempt: dict[str, int] = {}
        self.active_since: dict[str, float] = {}
        self.draws: list[float] = []

    # -- plumbing ------------------------------------------------------------------------

    def fresh(self, name: str) -> None:
        self.history[name] = []
        self.streak[name] = 0
        self.attempt[name] = 0
        self.active_since.pop(name, None)

    def draw_with(self, data: st.DataObject) -> Any:
        def draw() -> float:
            u = data.draw(unit)
            self.draws.append(u)
            return u

        return draw

    def feed(self, inp: Any, data: st.DataObject | None = None) -> Decision:
        self.draws = []
        before = self.lc
        d = before.step(inp, self.draw_with(data) if data is not None else _no_draw)
        assert len(self.draws) <= 1
        self.absorb(d, inp.at)
        return d

    def refused(self, inp: Any) -> CommandRefusedError:
        before = self.lc
        try:
            before.step(inp, _no_draw)
        except CommandRefusedError as e:
            assert before.names == self.lc.names
            return e
        raise AssertionError(f"{inp!r} was accepted; expected a refusal")

    def absorb(self, d: Decision, at: float) -> None:
        """Check one decision's events and commands, and carry them out."""
        for e in d.events:
            event(f"{e.old and e.old.value} -> {e.new and e.new.value} ({e.reason})")
        state_events = [e for e in d.events if e.kind == "state"]
        for e in d.events:
            assert e.at == at
            if e.kind == "state":
                assert e.new in TRANSITIONS[e.old], e
                assert e.reason in EDGES[(e.old, e.new)], e
                assert self.state.get(e.server) == e.old, (e, self.state.get(e.server))
                if e.new is None:
                    del self.state[e.server]
                else:
                    self.state[e.server] = e.new
                    self.reason[e.server] = e.reason
            else:
                assert e.kind == "escalation" and e.old is e.new is S.DROPPED
        self.check_escalations(d)

        failed_now = {e.server for e in state_events if e.new is S.FAILED}
        for c in d.commands:
            match c:
                case StartServer(server=s):
                    assert s not in self.workers, f"second worker for {s}"
                    self.workers[s] = "starting"
                case StopServer(server=s):
                    assert s in self.workers, f"stop without a worker: {s}"
                    del self.workers[s]
                case ScheduleRestart(server=s, delay=delay, token=t):
                    assert t not in self.timers and delay >= 0
                    self.timers[t] = (s, at + delay, False)
                    if s not in failed_now:  # re-armed: the waiting set moves to the new timer
                        event("a timer is re-armed for the siblings left waiting")
                        # It is armed on a sibling that waited on the cancelled timer, for
                        # that timer's time; the others waiting on that timer move with it.
                        old = self.token.get(s)
                        assert old is not None, "re-armed a timer nobody waits on"
                        _, old_due, cancelled = self.timers[old]
                        assert cancelled, "re-armed a timer that is still pending"
                        moved = [n for n, tok in self.token.items() if tok == old]
                        assert abs(at + delay - max(old_due, at)) < 1e-9
                        for n in moved:
                            self.token[n] = t
                case CancelRestart(server=s, token=t):
                    assert self.timers[t][0] == s and not self.timers[t][2]
                    self.timers[t] = (s, self.timers[t][1], True)
                case Forget(server=s):
                    assert s not in self.workers
                    self.timers = {t: v for t, v in self.timers.items() if v[0] != s}
                case Escalate():
                    pass
        for e in state_events:
            if e.new is not S.FAILED:
                self.token.pop(e.server, None)
            if e.old is S.ACTIVE:
                up = at - self.active_since.pop(e.server)
                if up >= self.members[e.server].policy.reset_after:
                    self.attempt[e.server] = 0
            if e.new is S.ACTIVE:
                self.active_since[e.server] = at
                self.streak[e.server] = 0
            if e.new is S.FAILED:
                self.history[e.server].append(at)
        self.lc = d.state

    def check_escalations(self, d: Decision) -> None:
        dropped_required = sorted(
            e.server
            for e in d.events
            if e.kind == "state" and e.new is S.DROPPED and self.members[e.server].required
        )
        escalated = sorted(c.server for c in d.commands if isinstance(c, Escalate))
        escalation_events = sorted(e.server for e in d.events if e.kind == "escalation")
        assert escalated == dropped_required == escalation_events

    def check_touched(self, d: Decision, expected: dict[str, ServerState | None]) -> None:
        changed = {e.server: e.new for e in d.events if e.kind == "state"}
        assert changed == expected, (changed, expected)

    # -- setup ---------------------------------------------------------------------------

    @initialize(data=st.data())
    def setup(self, data: st.DataObject) -> None:
        members = []
        for name, group in LAYOUT:
            members.append(
                Member(
                    name,
                    data.draw(policies, label=f"policy {name}"),
                    group,
                    required=data.draw(st.booleans(), label=f"required {name}"),
                    start=data.draw(st.sampled_from(["eager", "eager", "lazy"])),
                )
            )
        self.members = {m.name: m for m in members}
        self.order = [m.name for m in members]
        for m in members:
            self.fresh(m.name)
        self.state = {}
        d = Lifecycle.initial(members, GROUPS, self.now)  # type: ignore[arg-type]
        starts = [c.server for c in d.commands if isinstance(c, StartServer)]
        assert starts == [m.name for m in members if m.start == "eager"]
        assert len(d.commands) == len(starts)
        self.absorb(d, self.now)
        for m in members:
            expected = (S.STARTING, "start") if m.start == "eager" else (S.STOPPED, "lazy")
            assert (self.state[m.name], self.reason[m.name]) == expected

    # -- the runtime reports -------------------------------------------------------------

    @rule(dt=steps)
    def advance(self, dt: float) -> None:
        self.now += dt

    @precondition(lambda self: any(v == "starting" for v in self.workers.values()))
    @rule(data=st.data())
    def ready(self, data: st.DataObject) -> None:
        s = data.draw(
            st.sampled_from(sorted(n for n, v in self.workers.items() if v == "starting"))
        )
        d = self.feed(Started(s, self.now))
        self.check_touched(d, {s: S.ACTIVE})
        assert d.commands == ()
        self.workers[s] = "up"

    @precondition(lambda self: bool(self.workers))
    @rule(data=st.data(), kind=st.sampled_from(["normal", "abnormal", "start_failed"]))
    def worker_ends(self, data: st.DataObject, kind: str) -> None:
        s = data.draw(st.sampled_from(sorted(self.workers)))
        if kind == "start_failed" and self.workers[s] != "starting":
            kind = "abnormal"
        del self.workers[s]
        running = set(self.workers)
        expected, token_holders = self.predict_failure(
            s, "normal" if kind == "normal" else "abnormal"
        )
        if kind == "start_failed":
            inp: Any = StartFailed(s, self.now, "no handshake")
        else:
            inp = Exited(s, self.now, kind, "boom")  # type: ignore[arg-type]
        d = self.feed(inp, data)
        self.check_touched(d, expected)
        self.check_backoff(d, s)
        if token_holders:
            (schedule,) = [
                c for c in d.commands if isinstance(c, ScheduleRestart) and c.server == s
            ]
            for n in token_holders:
                self.token[n] = schedule.token
        else:
            assert not any(isinstance(c, ScheduleRestart) and c.server == s for c in d.commands)
        self.check_stops(d, [n for n in expected if n in running])

    def predict_failure(self, s: str, kind: str) -> tuple[dict[str, ServerState | None], list[str]]:
        """The brief's answer: who changes state, and who then waits on the new timer."""
        m = self.members[s]
        pre = dict(self.state)
        failed_start = pre[s] is S.STARTING
        streak = self.streak[s] + (1 if failed_start else 0)
        self.streak[s] = streak
        if not wants_restart(m.policy.restart, kind):
            return {s: S.STOPPED}, []
        strategy = GROUPS.get(m.group or "", "one_for_one")
        siblings: list[str] = []
        group = [n for n in self.order if self.members[n].group == m.group]
        if strategy == "one_for_all":
            siblings = [n for n in group if n != s and pre[n] in LIVE]
        elif strategy == "rest_for_one":
            siblings = [n for n in group[group.index(s) + 1 :] if pre[n] in LIVE]
        temporary = [n for n in siblings if self.members[n].policy.restart == "temporary"]
        taken = [n for n in siblings if pre[n] in RUNNING and n not in temporary]
        waiting = [n for n in siblings if pre[n] is S.FAILED]

        def exceeds(n: str) -> bool:
            p = self.members[n].policy
            return in_window(self.history[n], self.now, p.within) + 1 > p.max_restarts

        if streak > m.policy.max_restarts or any(exceeds(n) for n in [s, *taken]):
            if strategy == "one_for_one":
                return {s: S.DROPPED}, []
            return {n: S.DROPPED for n in group if n == s or pre[n] in LIVE}, []
        if waiting:
            event("a failure joins siblings already waiting on a timer")
        expected: dict[str, ServerState | None] = {s: S.FAILED}
        expected |= {n: S.FAILED for n in taken}
        expected |= {n: S.STOPPED for n in temporary}
        return expected, [s, *taken, *waiting]

    def check_backoff(self, d: Decision, trigger: str) -> None:
        failed = [e for e in d.events if e.kind == "state" and e.new is S.FAILED]
        if not failed:
            assert self.draws == []
            return
        (first,) = [e for e in failed if e.reason != "group_restart"]
        assert first.server == trigger
        p = self.members[trigger].policy
        expected_n = self.attempt[trigger] + 1
        # absorb() already reset the counter if the uptime reached reset_after.
        assert first.attempt == expected_n, (first.attempt, expected_n)
        self.attempt[trigger] = expected_n
        base = p.backoff.base(expected_n)
        (u,) = self.draws
        for e in failed:
            assert e.attempt == expected_n and e.delay == first.delay
            assert e.delay is not None
            assert (1 - p.backoff.jitter) * base - 1e-12 <= e.delay <= base <= p.backoff.max
            assert e.delay == p.backoff.delay(expected_n, u)

    def check_stops(self, d: Decision, running: list[str]) -> None:
        """The siblings that were running are stopped, in reverse declared order."""
        stops = [c.server for c in d.commands if isinstance(c, StopServer)]
        rank = {n: i for i, n in enumerate(self.order)}
        assert stops == sorted(running, key=rank.__getitem__, reverse=True)

    @precondition(lambda self: any(not v[2] for v in self.timers.values()))
    @rule(data=st.data())
    def timer_fires(self, data: st.DataObject) -> None:
        live = sorted(t for t, v in self.timers.items() if not v[2])
        t = data.draw(st.sampled_from(live))
        server, due, _ = self.timers.pop(t)
        self.now = max(self.now, due)
        waiting = [n for n in self.order if self.token.get(n) == t]
        d = self.feed(TimerFired(server, self.now, t))
        self.check_touched(d, {n: S.STARTING for n in waiting})
        assert d.commands == tuple(StartServer(n) for n in waiting)
        assert all(e.reason == "backoff" for e in d.events)

    @precondition(lambda self: any(v[2] for v in self.timers.values()) or bool(self.timers))
    @rule(data=st.data())
    def stale_timer(self, data: st.DataObject) -> None:
        """A cancelled token, or a live one named with the wrong server, changes nothing."""
        t = data.draw(st.sampled_from(sorted(self.timers)))
        server, _, cancelled = self.timers[t]
        if not cancelled:
            others = [n for n in self.state if n != server]
            if not others:
                return
            server = data.draw(st.sampled_from(sorted(others)))
        else:
            del self.timers[t]
        before = self.lc
        d = self.feed(TimerFired(server, self.now, t))
        assert d.state is before and d.commands == () and d.events == ()

    @precondition(lambda self: bool(self.state))
    @rule(data=st.data())
    def idle_timeout(self, data: st.DataObject) -> None:
        s = data.draw(st.sampled_from(sorted(self.state)))
        active = self.state[s] is S.ACTIVE
        before = self.lc
        d = self.feed(IdleTimeout(s, self.now))
        if active:
            self.check_touched(d, {s: S.STOPPED})
            assert d.commands == (StopServer(s, "idle"),)
        else:
            assert d.state is before and d.commands == () and d.events == ()

    @precondition(lambda self: bool(self.state))
    @rule(data=st.data(), which=st.sampled_from(["Started", "StartFailed", "Exited"]))
    def stale_report(self, data: st.DataObject, which: str) -> None:
        """Reports about a worker the runtime no longer has are no-ops."""
        applies = {"Started": {S.STARTING}, "StartFailed": {S.STARTING}, "Exited": RUNNING}
        stale = sorted(n for n, st_ in self.state.items() if st_ not in applies[which])
        if not stale:
            return
        s = data.draw(st.sampled_from(stale))
        inp = {
            "Started": Started(s, self.now),
            "StartFailed": StartFailed(s, self.now, "late"),
            "Exited": Exited(s, self.now, "abnormal", "late"),
        }[which]
        before = self.lc
        d = self.feed(inp)
        assert d.state is before and d.commands == () and d.events == ()

    @rule(which=st.sampled_from(["Started", "StartFailed", "Exited", "TimerFired", "IdleTimeout"]))
    def unknown_report(self, which: str) -> None:
        inp = {
            "Started": Started(GHOST, self.now),
            "StartFailed": StartFailed(GHOST, self.now, "x"),
            "Exited": Exited(GHOST, self.now, "normal", "x"),
            "TimerFired": TimerFired(GHOST, self.now, 1),
            "IdleTimeout": IdleTimeout(GHOST, self.now),
        }[which]
        e = self.refused(inp)
        assert isinstance(e, UnknownServerRefusedError) and e.state is None
        assert e.reason == "unknown server" and e.command == which

    # -- commands ------------------------------------------------------------------------

    @rule(
        data=st.data(),
        command=st.sampled_from(sorted(COMMANDS)),
    )
    def command(self, data: st.DataObject, command: str) -> None:
        # Mostly the servers in a less common state, so every command meets every state.
        by_state: dict[object, list[str]] = {}
        for n in sorted({*self.order, *EXTRA_NAMES, GHOST}):
            by_state.setdefault(self.state.get(n), []).append(n)
        bucket = data.draw(st.sampled_from(sorted(by_state, key=str)))
        self.run_command(command, data.draw(st.sampled_from(by_state[bucket])))

    def shared_timer_owners(self) -> list[str]:
        waiting: dict[int, int] = {}
        for t in self.token.values():
            waiting[t] = waiting.get(t, 0) + 1
        return sorted(self.timers[t][0] for t, k in waiting.items() if k > 1)

    @precondition(lambda self: bool(self.shared_timer_owners()))
    @rule(data=st.data(), command=st.sampled_from(["RestartNow", "Drop", "Stop", "Remove"]))
    def command_on_timer_owner(self, data: st.DataObject, command: str) -> None:
        """The server that armed a group's timer leaves it while its siblings still wait."""
        self.run_command(command, data.draw(st.sampled_from(self.shared_timer_owners())))

    def run_command(self, command: str, s: str) -> None:
        inp = COMMANDS[command](s, self.now)
        state = self.state.get(s)
        table = COMMAND_TABLE[command]
        allowed = state in table and (command != "Wake" or self.reason.get(s) in WAKEABLE)
        if not allowed:
            e = self.refused(inp)
            assert e.server == s and e.command == command and e.state is state
            assert (e.reason == "unknown server") == (state is None)
            assert e.reason and s in str(e)
            return
        assert state is not None
        had_worker = s in self.workers
        d = self.feed(inp)
        self.check_touched(d, {s: table[state]})
        # A command touches its server only; re-arming a shared timer is bookkeeping.
        for c in d.commands:
            if not isinstance(c, ScheduleRestart | CancelRestart):
                assert c.server == s, c
        stops = [c for c in d.commands if isinstance(c, StopServer)]
        if command == "RestartNow":
            assert stops == ([StopServer(s, "restart")] if had_worker else [])
            assert d.commands[-1] == StartServer(s)
        elif command in ("Revive", "Wake"):
            assert d.commands == (StartServer(s),)
            if command == "Revive":
                self.fresh(s)
        else:
            assert len(stops) == (1 if had_worker else 0)
        if command == "Remove":
            assert d.commands[-1] == Forget(s)
            self.order.remove(s)

    @rule(
        data=st.data(),
        name=st.sampled_from([*EXTRA_NAMES, "a1", "u1", "r2"]),
        group=st.sampled_from([None, "all", "rest", "solo", "nosuch"]),
    )
    def add(self, data: st.DataObject, name: str, group: str | None) -> None:
        member = Member(
            name,
            data.draw(policies),
            group,
            required=data.draw(st.booleans()),
            start=data.draw(st.sampled_from(["eager", "lazy"])),
        )
        inp = Add(member, self.now)
        if name in self.state or group == "nosuch":
            e = self.refused(inp)
            assert e.server == name and e.command == "Add"
            return
        self.members[name] = member
        self.order.append(name)
        self.fresh(name)
        d = self.feed(inp)
        if member.start == "eager":
            self.check_touched(d, {name: S.STARTING})
            assert d.commands == (StartServer(name),)
        else:
            self.check_touched(d, {name: S.STOPPED})
            assert d.commands == ()

    # -- invariants ----------------------------------------------------------------------

    @invariant()
    def replaying_events_gives_the_states(self) -> None:
        assert list(self.lc.names) == self.order
        assert {n: self.lc.state_of(n) for n in self.lc.names} == self.state

    @invariant()
    def runtime_matches_states(self) -> None:
        for n, st_ in self.state.items():
            worker = self.workers.get(n)
            expected = {S.STARTING: "starting", S.ACTIVE: "up"}.get(st_)
            assert worker == expected, (n, st_, worker)
            rec = self.lc.record(n)
            assert rec.state is st_ and rec.wakeable == (
                st_ is S.STOPPED and self.reason[n] in WAKEABLE
            )
            if st_ is S.FAILED:
                t = self.token[n]
                assert rec.token == t and t in self.timers and not self.timers[t][2]
                assert n in self.lc.pending_restart(t)
            else:
                assert rec.token is None and n not in self.token
        assert set(self.workers) <= set(self.state)
        for t, (_, _, cancelled) in self.timers.items():
            if not cancelled:
                assert t in self.token.values(), f"timer {t} armed for nobody"

    @invariant()
    def intensity_is_never_exceeded(self) -> None:
        for n, times in self.history.items():
            if n not in self.members:
                continue
            p = self.members[n].policy
            for i, t in enumerate(times):
                assert in_window(times[: i + 1], t, p.within) <= p.max_restarts, (n, times)


def _no_draw() -> float:
    raise AssertionError("draw() called when no restart is being scheduled")


LifecycleMachine.TestCase.settings = settings(settings.get_profile(PROFILE))
TestLifecycleMachine = LifecycleMachine.TestCase
