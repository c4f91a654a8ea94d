"""Example runs of the lifecycle core, in the spirit of OTP's supervisor_SUITE."""

from __future__ import annotations

import pytest
from lifecycle_expect import COMMAND_TABLE, Driver, S, never, policy, wants_restart

from mcpvisor.supervisor.lifecycle import (
    EDGES,
    MANUAL,
    TRANSITIONS,
    Add,
    CancelRestart,
    CommandRefusedError,
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

# -- helpers ---------------------------------------------------------------------------------


def trio_group(strategy: str | None, restart: str = "permanent", **policy_kw: float) -> Driver:
    """a, b, c in declared order, grouped under ``strategy`` (None: no group), all ACTIVE."""
    group = None if strategy is None else "g"
    p = policy(restart, **policy_kw)  # type: ignore[arg-type]
    drv = Driver(
        [Member(n, p, group) for n in ("a", "b", "c")],
        {} if strategy is None else {"g": strategy},
    )
    for n in ("a", "b", "c"):
        drv(Started(n, 0.0))
    return drv


def schedule_of(drv: Driver) -> ScheduleRestart:
    (schedule,) = [c for c in drv.last.commands if isinstance(c, ScheduleRestart)]
    return schedule


def fire(drv: Driver, at: float) -> None:
    """Fire the timer that the last decision armed."""
    s = schedule_of(drv)
    drv(TimerFired(s.server, at, s.token))


def crash(drv: Driver, name: str, at: float, kind: str = "abnormal") -> None:
    drv(Exited(name, at, kind, "boom"))  # type: ignore[arg-type]


# -- restart types x strategies x exit kinds --------------------------------------------------

TAKEN_DOWN = {None: "", "one_for_one": "", "one_for_all": "ac", "rest_for_one": "c"}


@pytest.mark.parametrize("strategy", list(TAKEN_DOWN))
@pytest.mark.parametrize("restart", ["permanent", "transient", "temporary"])
@pytest.mark.parametrize("kind", ["normal", "abnormal", "start_failed"])
def test_failure_of_the_middle_member(strategy: str | None, restart: str, kind: str) -> None:
    drv = trio_group(strategy, restart)
    if kind == "start_failed":
        drv(RestartNow("b", 1.0))
        drv(StartFailed("b", 2.0, "no handshake"))
    else:
        crash(drv, "b", 2.0, kind)
    exit_kind = "normal" if kind == "normal" else "abnormal"
    if not wants_restart(restart, exit_kind):
        # Nothing restarts, and the group is not touched (OTP: transient/temporary exits).
        assert drv.states() == {"a": S.ACTIVE, "b": S.STOPPED, "c": S.ACTIVE}
        assert drv.last.commands == ()
        assert not drv.lc.record("b").wakeable
        return
    # The siblings are restarted too, except temporary ones, which OTP never restarts.
    down = TAKEN_DOWN[strategy]
    sibling_state = S.STOPPED if restart == "temporary" else S.FAILED
    expected = {n: (sibling_state if n in down else S.ACTIVE) for n in "ac"} | {"b": S.FAILED}
    assert drv.states() == expected
    stops = [c for c in drv.last.commands if isinstance(c, StopServer)]
    assert stops == [StopServer(n, "group_restart") for n in reversed(down)]
    assert schedule_of(drv).server == "b"
    reason = {"normal": "exited", "abnormal": "crashed", "start_failed": "start_failed"}[kind]
    assert drv.lc.record("b").reason == reason

    fire(drv, 3.0)
    restarted = sorted(n for n, st in expected.items() if st is S.FAILED)
    assert drv.last.commands == tuple(StartServer(n) for n in restarted)
    assert all(drv.state(n) is S.STARTING for n in restarted)
    for n in restarted:
        drv(Started(n, 4.0))
    assert drv.states() == {n: (S.ACTIVE if n in restarted else expected[n]) for n in "abc"}


def test_first_member_of_rest_for_one_takes_down_everyone_after_it() -> None:
    drv = trio_group("rest_for_one")
    crash(drv, "a", 1.0)
    assert drv.states() == {"a": S.FAILED, "b": S.FAILED, "c": S.FAILED}
    assert [c for c in drv.last.commands if isinstance(c, StopServer)] == [
        StopServer("c", "group_restart"),
        StopServer("b", "group_restart"),
    ]
    crash_last = trio_group("rest_for_one")
    crash(crash_last, "c", 1.0)
    assert crash_last.states() == {"a": S.ACTIVE, "b": S.ACTIVE, "c": S.FAILED}


def test_a_group_restart_leaves_dropped_and_stopped_siblings_alone() -> None:
    drv = trio_group("one_for_all")
    drv(Drop("a", 1.0))
    drv(Stop("c", 1.0))
    crash(drv, "b", 2.0)
    assert drv.states() == {"a": S.DROPPED, "b": S.FAILED, "c": S.STOPPED}
    assert [c for c in drv.last.commands if isinstance(c, StopServer)] == []
    fire(drv, 3.0)
    assert drv.last.commands == (StartServer("b"),)


def test_a_starting_sibling_is_stopped_and_restarted_with_the_group() -> None:
    drv = trio_group("one_for_all")
    drv(RestartNow("c", 1.0))
    assert drv.state("c") is S.STARTING
    crash(drv, "a", 2.0)
    assert drv.states() == {"a": S.FAILED, "b": S.FAILED, "c": S.FAILED}
    assert StopServer("c", "group_restart") in drv.last.commands
    assert drv.lc.record("c").restarts == 1  # counted like any sibling taken down


def test_a_failed_sibling_joins_the_group_restart_without_being_counted_twice() -> None:
    drv = trio_group("rest_for_one")
    crash(drv, "c", 1.0)
    c_timer = schedule_of(drv)
    crash(drv, "a", 1.5)
    assert drv.states() == {"a": S.FAILED, "b": S.FAILED, "c": S.FAILED}
    group_timer = schedule_of(drv)
    # c's own timer no longer matters: it is cancelled, and firing it anyway does nothing.
    assert CancelRestart("c", c_timer.token) in drv.last.commands
    assert [c.server for c in drv.last.commands if isinstance(c, StopServer)] == ["b"]
    assert drv.lc.record("c").restarts == 1
    stale = drv(TimerFired("c", 5.0, c_timer.token))
    assert stale.events == () and stale.commands == ()
    drv(TimerFired("a", 5.0, group_timer.token))
    assert drv.last.commands == (StartServer("a"), StartServer("b"), StartServer("c"))


def test_group_timer_is_rearmed_when_its_owner_is_removed() -> None:
    drv = trio_group("one_for_all", initial=4.0)
    crash(drv, "b", 10.0)
    timer = schedule_of(drv)
    d = drv(Remove("b", 11.0))
    (cancel,) = [c for c in d.commands if isinstance(c, CancelRestart)]
    (rearm,) = [c for c in d.commands if isinstance(c, ScheduleRestart)]
    assert cancel == CancelRestart("b", timer.token)
    assert rearm.server == "a" and rearm.delay == pytest.approx(3.0)
    assert d.commands[-1] == Forget("b")
    drv(TimerFired("a", 14.0, rearm.token))
    assert drv.last.commands == (StartServer("a"), StartServer("c"))


def test_manual_commands_touch_only_their_server() -> None:
    drv = trio_group("one_for_all")
    drv(Stop("b", 1.0))
    assert drv.states() == {"a": S.ACTIVE, "b": S.STOPPED, "c": S.ACTIVE}
    drv(RestartNow("a", 2.0))
    assert drv.last.commands == (StopServer("a", "restart"), StartServer("a"))
    assert drv.state("c") is S.ACTIVE


# -- intensity --------------------------------------------------------------------------------


def flap(drv: Driver, name: str, times: list[float]) -> None:
    """Crash ``name`` at each time, letting it restart and get ready in between."""
    for t in times:
        crash(drv, name, t)
        if drv.state(name) is S.FAILED:
            fire(drv, t)
            drv(Started(name, t))


def test_intensity_allows_exactly_max_restarts_in_the_window() -> None:
    drv = Driver([Member("x", policy(max_restarts=2, within=10.0))])
    drv(Started("x", 0.0))
    flap(drv, "x", [0.0, 1.0])
    assert drv.lc.record("x").restarts == 2 and drv.state("x") is S.ACTIVE
    crash(drv, "x", 9.0)
    assert drv.state("x") is S.DROPPED
    assert drv.lc.record("x").reason == "intensity"


def test_a_restart_exactly_within_seconds_ago_still_counts() -> None:
    drv = Driver([Member("x", policy(max_restarts=2, within=10.0))])
    drv(Started("x", 0.0))
    flap(drv, "x", [0.0, 1.0])
    crash(drv, "x", 10.0)  # the restart at 0.0 is exactly `within` ago: in the window
    assert drv.state("x") is S.DROPPED


def test_a_restart_just_over_within_seconds_ago_does_not_count() -> None:
    drv = Driver([Member("x", policy(max_restarts=2, within=10.0))])
    drv(Started("x", 0.0))
    flap(drv, "x", [0.0, 1.0])
    crash(drv, "x", 10.25)
    assert drv.state("x") is S.FAILED
    assert drv.lc.record("x").restart_times == (1.0, 10.25)


def test_max_restarts_zero_drops_on_the_first_failure() -> None:
    drv = Driver([Member("x", policy(max_restarts=0))])
    drv(Started("x", 0.0))
    d = drv(Exited("x", 1.0, "abnormal", "boom"), never)
    assert drv.state("x") is S.DROPPED
    assert d.commands == ()  # its worker is gone already; nothing to stop, nothing to arm


def test_a_bogus_server_is_dropped_after_max_restarts_plus_one_attempts() -> None:
    # Attempts 100 s apart never fill a 1 s window, yet the server still gives up.
    drv = Driver([Member("bogus", policy(max_restarts=3, within=1.0))])
    t = 0.0
    while drv.state("bogus") is S.STARTING:
        t += 100.0
        drv(StartFailed("bogus", t, "command not found"))
        if drv.state("bogus") is S.FAILED:
            fire(drv, t + 100.0)
    attempts = [c for c in drv.commands if c == StartServer("bogus")]
    assert len(attempts) == 4
    assert drv.state("bogus") is S.DROPPED
    assert drv.lc.record("bogus").last_cause == "command not found"


def test_a_group_drops_as_a_whole_when_one_member_runs_out_of_budget() -> None:
    tight = policy(max_restarts=1)
    loose = policy(max_restarts=10)
    drv = Driver(
        [
            Member("a", loose, "g", required=True),
            Member("b", tight, "g"),
            Member("c", loose, "g", required=True),
            Member("z", loose),
        ],
        {"g": "one_for_all"},
    )
    for n in "abcz":
        drv(Started(n, 0.0))
    crash(drv, "a", 1.0)  # counts for b too
    fire(drv, 2.0)
    for n in "abc":
        drv(Started(n, 2.0))
    d = drv(Exited("c", 3.0, "abnormal", "boom"), never)  # b would need its 2nd restart
    assert drv.states() == {"a": S.DROPPED, "b": S.DROPPED, "c": S.DROPPED, "z": S.ACTIVE}
    assert {e.reason for e in d.events if e.kind == "state"} == {"intensity"}
    assert [c for c in d.commands if isinstance(c, StopServer)] == [
        StopServer("b", "intensity"),
        StopServer("a", "intensity"),
    ]
    assert [c for c in d.commands if isinstance(c, Escalate)] == [
        Escalate("a", d.events[0].cause or ""),
        Escalate("c", "boom"),
    ]
    assert [e.server for e in d.events if e.kind == "escalation"] == ["a", "c"]


def test_rest_for_one_intensity_drops_the_members_before_too() -> None:
    drv = trio_group("rest_for_one", max_restarts=0)
    crash(drv, "b", 1.0)
    assert drv.states() == {"a": S.DROPPED, "b": S.DROPPED, "c": S.DROPPED}


def test_restart_now_is_neither_counted_nor_backed_off() -> None:
    drv = Driver([Member("x", policy(max_restarts=1))])
    for i in range(5):
        drv(Started("x", float(i)))
        d = drv(RestartNow("x", float(i)), never)
        assert d.commands == (StopServer("x", "restart"), StartServer("x"))
    assert drv.lc.record("x").restarts == 0
    drv(Started("x", 9.0))
    crash(drv, "x", 9.0)
    assert drv.state("x") is S.FAILED


def test_revive_gives_a_fresh_budget() -> None:
    drv = Driver([Member("x", policy(max_restarts=1, initial=1.0))])
    drv(Started("x", 0.0))
    flap(drv, "x", [1.0, 2.0])
    assert drv.state("x") is S.DROPPED
    drv(Revive("x", 3.0))
    assert drv.lc.record("x").restarts == 0 and drv.lc.record("x").attempt == 0
    drv(Started("x", 3.0))
    crash(drv, "x", 3.0)
    assert drv.state("x") is S.FAILED
    assert schedule_of(drv).delay == 1.0  # the backoff starts over too


# -- backoff ----------------------------------------------------------------------------------


def test_backoff_doubles_up_to_its_cap() -> None:
    drv = Driver([Member("x", policy(max_restarts=100, within=1.0, initial=1.0, maximum=5.0))])
    delays = []
    for i in range(6):
        t = 100.0 * (i + 1)
        drv(Started("x", t))
        crash(drv, "x", t + 1.0)
        delays.append(schedule_of(drv).delay)
        fire(drv, t + 1.0)
    assert delays == [1.0, 2.0, 4.0, 5.0, 5.0, 5.0]


@pytest.mark.parametrize("u", [0.0, 0.5, 0.999999])
def test_jitter_stays_between_the_floor_and_the_cap(u: float) -> None:
    p = policy(initial=2.0, maximum=3.0, jitter=0.5, max_restarts=100)
    drv = Driver([Member("x", p)])
    drv(Started("x", 0.0))
    for n in range(1, 5):
        drv(Exited("x", float(n), "abnormal", "boom"), lambda: u)
        base = min(3.0, 2.0 * 2 ** (n - 1))
        delay = schedule_of(drv).delay
        assert delay == base * (1 - 0.5 * u)
        assert 0.5 * base <= delay <= base <= 3.0
        fire(drv, float(n))
        drv(Started("x", float(n)))


@pytest.mark.parametrize(("uptime", "expected_attempt"), [(4.75, 2), (5.0, 1), (60.0, 1)])
def test_backoff_resets_after_stable_uptime(uptime: float, expected_attempt: int) -> None:
    drv = Driver([Member("x", policy(reset_after=5.0, max_restarts=10, within=1.0))])
    drv(Started("x", 0.0))
    crash(drv, "x", 0.0)
    fire(drv, 1.0)
    drv(Started("x", 1.0))
    crash(drv, "x", 1.0 + uptime)
    (event,) = [e for e in drv.last.events if e.new is S.FAILED]
    assert event.attempt == expected_attempt
    assert event.delay == 2.0 ** (expected_attempt - 1)


def test_group_restart_waits_the_failed_members_backoff() -> None:
    drv = trio_group("one_for_all")
    crash(drv, "b", 1.0)
    delays = {e.server: (e.attempt, e.delay) for e in drv.last.events if e.new is S.FAILED}
    assert delays == {"a": (1, 1.0), "b": (1, 1.0), "c": (1, 1.0)}


# -- escalation -------------------------------------------------------------------------------


def test_a_required_server_escalates_once_per_drop() -> None:
    drv = Driver([Member("x", policy(max_restarts=0), required=True)])
    drv(Started("x", 0.0))
    d = drv(Exited("x", 1.0, "abnormal", "boom"))
    assert [c for c in d.commands if isinstance(c, Escalate)] == [Escalate("x", "boom")]
    (esc,) = [e for e in d.events if e.kind == "escalation"]
    assert (esc.old, esc.new, esc.reason, esc.cause) == (S.DROPPED, S.DROPPED, "escalated", "boom")
    drv(Revive("x", 2.0))
    drv(StartFailed("x", 3.0, "again"))
    assert [c for c in drv.commands if isinstance(c, Escalate)] == [
        Escalate("x", "boom"),
        Escalate("x", "again"),
    ]


def test_a_manual_drop_of_a_required_server_escalates_but_stop_does_not() -> None:
    drv = Driver([Member("x", required=True), Member("y")])
    drv(Started("x", 0.0))
    drv(Started("y", 0.0))
    d = drv(Drop("x", 1.0))
    assert d.commands == (
        StopServer("x", "dropped"),
        Escalate("x", "required server 'x' was dropped"),
    )
    d = drv(Drop("y", 1.0))
    assert d.commands == (StopServer("y", "dropped"),)
    drv(Revive("x", 2.0))
    d = drv(Stop("x", 3.0))
    assert d.commands == (StopServer("x", "stopped"),)


# -- manual commands from every state, against the table --------------------------------------

STATE_SETUPS = ["starting", "active", "failed", "dropped", "stopped", "idle", "lazy"]


def server_in(setup: str) -> Driver:
    lazy = setup == "lazy"
    drv = Driver([Member("x", policy(), start="lazy" if lazy else "eager")])
    if setup in ("active", "failed", "dropped", "stopped", "idle"):
        drv(Started("x", 0.0))
    if setup == "failed":
        crash(drv, "x", 1.0)
    elif setup == "dropped":
        drv(Drop("x", 1.0))
    elif setup == "stopped":
        drv(Stop("x", 1.0))
    elif setup == "idle":
        drv(IdleTimeout("x", 1.0))
    return drv


def test_the_command_table_is_the_briefs() -> None:
    assert {c: dict(m) for c, m in MANUAL.items()} == COMMAND_TABLE
    for targets in COMMAND_TABLE.values():
        for old, new in targets.items():
            assert new in TRANSITIONS[old]


@pytest.mark.parametrize("setup", STATE_SETUPS)
@pytest.mark.parametrize("command", sorted(COMMAND_TABLE))
def test_each_command_from_each_state(setup: str, command: str) -> None:
    drv = server_in(setup)
    state = drv.state("x")
    inp = {
        "RestartNow": RestartNow,
        "Drop": Drop,
        "Stop": Stop,
        "Revive": Revive,
        "Wake": Wake,
        "Remove": Remove,
    }[command]("x", 5.0)
    allowed = state in COMMAND_TABLE[command] and (command != "Wake" or setup in ("idle", "lazy"))
    if not allowed:
        before = drv.lc
        with pytest.raises(CommandRefusedError) as info:
            drv(inp, never)
        err = info.value
        assert (err.server, err.command, err.state) == ("x", command, state)
        verb = {"RestartNow": "restart"}.get(command, command.lower())
        assert str(err).startswith(f"cannot {verb} 'x'") and err.reason in str(err)
        assert drv.lc is before
        return
    d = drv(inp, never)
    (event,) = d.events
    assert (event.old, event.new) == (state, COMMAND_TABLE[command][state])
    assert event.reason in EDGES[(event.old, event.new)]
    if event.new is None:
        assert drv.lc.names == () and d.commands[-1] == Forget("x")


def test_refusal_reasons_say_why() -> None:
    drv = server_in("active")
    with pytest.raises(CommandRefusedError, match=r"revive\(\) applies to dropped or stopped"):
        drv(Revive("x", 1.0))
    with pytest.raises(CommandRefusedError, match="already starting") as refused:
        server_in("starting")(RestartNow("x", 1.0))
    # The words are the handle's methods; the attribute keeps the core's input.
    assert str(refused.value).startswith("cannot restart 'x'")
    assert refused.value.command == "RestartNow"
    with pytest.raises(CommandRefusedError, match=r"use revive\(\) to start it"):
        server_in("dropped")(RestartNow("x", 1.0))
    with pytest.raises(CommandRefusedError, match="already dropped"):
        server_in("dropped")(Drop("x", 1.0))
    with pytest.raises(CommandRefusedError, match=r"stopped \(stopped\), not idle or lazy"):
        server_in("stopped")(Wake("x", 1.0))


def test_wake_and_idle_cost_no_budget() -> None:
    drv = Driver([Member("x", policy(max_restarts=0), start="lazy")])
    assert drv.lc.record("x").wakeable
    for t in range(5):
        drv(Wake("x", float(t)))
        drv(Started("x", float(t)))
        d = drv(IdleTimeout("x", t + 0.5))
        assert d.commands == (StopServer("x", "idle"),)
        assert drv.lc.record("x").wakeable
    assert drv.lc.record("x").restarts == 0
    drv(Wake("x", 9.0))
    drv(Stop("x", 9.0))
    assert not drv.lc.record("x").wakeable


# -- stale and unknown inputs -----------------------------------------------------------------

STALE = {
    "Started": ["active", "failed", "dropped", "stopped", "idle", "lazy"],
    "StartFailed": ["active", "failed", "dropped", "stopped", "idle", "lazy"],
    "Exited": ["failed", "dropped", "stopped", "idle", "lazy"],
    "IdleTimeout": ["starting", "failed", "dropped", "stopped", "idle", "lazy"],
}


@pytest.mark.parametrize(
    ("which", "setup"), [(w, s) for w, setups in STALE.items() for s in setups]
)
def test_stale_reports_are_no_ops(which: str, setup: str) -> None:
    drv = server_in(setup)
    inp = {
        "Started": Started("x", 9.0),
        "StartFailed": StartFailed("x", 9.0, "late"),
        "Exited": Exited("x", 9.0, "abnormal", "late"),
        "IdleTimeout": IdleTimeout("x", 9.0),
    }[which]
    before = drv.lc
    d = drv(inp, never)
    assert d.state is before and d.commands == () and d.events == ()


def test_a_stale_timer_is_a_no_op() -> None:
    drv = server_in("failed")
    timer = schedule_of(drv)
    d = drv(TimerFired("x", 9.0, timer.token + 1), never)
    assert d.events == () and d.commands == ()
    drv(RestartNow("x", 2.0))
    d = drv(TimerFired("x", 9.0, timer.token), never)
    assert d.events == () and d.commands == ()


@pytest.mark.parametrize(
    "inp",
    [
        Started("nope", 0.0),
        StartFailed("nope", 0.0, "x"),
        Exited("nope", 0.0, "normal", "x"),
        TimerFired("nope", 0.0, 1),
        IdleTimeout("nope", 0.0),
        RestartNow("nope", 0.0),
        Drop("nope", 0.0),
        Revive("nope", 0.0),
        Stop("nope", 0.0),
        Remove("nope", 0.0),
        Wake("nope", 0.0),
    ],
    ids=lambda i: type(i).__name__,
)
def test_unknown_servers_are_refused(inp: object) -> None:
    drv = server_in("active")
    with pytest.raises(UnknownServerRefusedError) as info:
        drv(inp, never)
    assert info.value.state is None and info.value.reason == "unknown server"
    assert isinstance(info.value, LookupError)
    with pytest.raises(UnknownServerRefusedError):
        drv.lc.state_of("nope")


# -- membership -------------------------------------------------------------------------------


def test_initial_starts_eager_members_in_declared_order() -> None:
    members = [Member("b"), Member("a", start="lazy"), Member("c")]
    d = Lifecycle.initial(members, {}, 0.0)
    assert d.commands == (StartServer("b"), StartServer("c"))
    assert [(e.server, e.old, e.new, e.reason) for e in d.events] == [
        ("b", None, S.STARTING, "start"),
        ("a", None, S.STOPPED, "lazy"),
        ("c", None, S.STARTING, "start"),
    ]
    assert d.state.names == ("b", "a", "c")
    with pytest.raises(ValueError, match="duplicate"):
        Lifecycle.initial([Member("a"), Member("a")], {}, 0.0)
    with pytest.raises(ValueError, match="undeclared group"):
        Lifecycle.initial([Member("a", group="g")], {}, 0.0)


def test_added_members_join_the_end_of_the_declared_order() -> None:
    drv = trio_group("rest_for_one")
    d = drv(Add(Member("d", policy(), "g"), 1.0))
    assert d.commands == (StartServer("d"),)
    assert drv.lc.names == ("a", "b", "c", "d")
    drv(Started("d", 1.0))
    crash(drv, "c", 2.0)
    assert drv.state("d") is S.FAILED  # declared after c
    d = drv(Add(Member("e", start="lazy"), 3.0))
    assert d.commands == () and drv.state("e") is S.STOPPED
    with pytest.raises(CommandRefusedError, match="exists"):
        drv(Add(Member("a"), 3.0))
    with pytest.raises(CommandRefusedError, match="unknown group"):
        drv(Add(Member("f", group="nope"), 3.0))


def test_remove_stops_and_forgets() -> None:
    drv = trio_group("one_for_all")
    d = drv(Remove("b", 1.0))
    assert d.commands == (StopServer("b", "removed"), Forget("b"))
    (event,) = d.events
    assert (event.old, event.new, event.reason) == (S.ACTIVE, None, "removed")
    assert drv.lc.names == ("a", "c")
    assert drv.lc.group_members("g") == ("a", "c")
    crash(drv, "a", 2.0)
    assert drv.states() == {"a": S.FAILED, "c": S.FAILED}


def test_records_and_events_carry_the_details() -> None:
    drv = Driver([Member("x", policy(initial=1.5))])
    drv(Started("x", 1.0))
    assert drv.lc.record("x").active_since == 1.0
    crash(drv, "x", 2.0)
    rec = drv.lc.record("x")
    assert (rec.state, rec.since, rec.reason, rec.attempt, rec.restarts) == (
        ServerState.FAILED,
        2.0,
        "crashed",
        1,
        1,
    )
    assert rec.last_cause == "boom" and rec.restart_times == (2.0,) and rec.token is not None
    (event,) = drv.last.events
    assert (event.attempt, event.delay, event.cause, event.kind) == (1, 1.5, "boom", "state")
