"""``Reconfigure`` in the pure core: random reconfigurations inside the lifecycle state machine.

The machine of ``test_lifecycle_stateful`` (a fake runtime that carries out every command,
and an oracle written from the semantics) gains one rule: a random reconfiguration that
removes, keeps, updates in place, restarts and adds servers, moves them between groups and
reorders them, or an invalid one that must change nothing. Its prediction is checked against
the decision, and every other rule keeps running against the reconfigured state.
"""

from __future__ import annotations

from typing import Any

import hypothesis.strategies as st
import pytest
import test_lifecycle_stateful as base
from hypothesis import event, settings
from hypothesis.stateful import invariant, rule
from lifecycle_expect import PROFILE, Driver, S, in_window, policy

from mcpvisor.supervisor.lifecycle import (
    CommandRefusedError,
    Exited,
    Forget,
    LifecycleEvent,
    Member,
    Reconfigure,
    ServerState,
    Started,
    StartServer,
    StopServer,
)

GROUP_CHOICES = [None, "all", "rest", "solo"]
NEW_NAMES = ["n1", "n2", "n3", "a1", "u1", "r2"]
RESTARTS_FROM = frozenset({S.STARTING, S.ACTIVE, S.FAILED, S.DROPPED})


class ReconfigureMachine(base.LifecycleMachine):
    def __init__(self) -> None:
        super().__init__()
        # Index into history[n] from which the current policy (changed in place) applies.
        self.policy_from: dict[str, int] = {}

    def updated(self, data: st.DataObject, m: Member) -> Member:
        """``m`` with its supervision fields redrawn; ``within`` is kept (see the invariant)."""
        drawn = data.draw(base.policies)
        return Member(
            m.name,
            policy=type(drawn)(
                restart=drawn.restart,
                max_restarts=drawn.max_restarts,
                within=m.policy.within,
                backoff=drawn.backoff,
                reset_after=drawn.reset_after,
            ),
            group=data.draw(st.sampled_from(GROUP_CHOICES)),
            required=data.draw(st.booleans()),
            start=data.draw(st.sampled_from(["eager", "lazy"])),
        )

    @rule(data=st.data())
    def reconfigure(self, data: st.DataObject) -> None:
        old_order = list(self.order)
        actions = {
            n: data.draw(st.sampled_from(["keep", "keep", "update", "restart", "remove"]))
            for n in old_order
        }
        kept = [n for n in old_order if actions[n] != "remove"]
        addable = [n for n in NEW_NAMES if n not in self.state]
        added = (
            data.draw(st.lists(st.sampled_from(addable), unique=True, max_size=2))
            if addable
            else []
        )
        new_members: dict[str, Member] = {}
        for n in kept:
            m = self.members[n]
            new_members[n] = self.updated(data, m) if actions[n] in ("update", "restart") else m
        for n in added:
            new_members[n] = Member(
                n,
                data.draw(base.policies),
                data.draw(st.sampled_from(GROUP_CHOICES)),
                required=data.draw(st.booleans()),
                start=data.draw(st.sampled_from(["eager", "lazy"])),
            )
        order = data.draw(st.permutations([*kept, *added]))
        restart = frozenset(n for n in kept if actions[n] == "restart")
        members = [new_members[n] for n in order]
        flaw = data.draw(st.sampled_from([None] * 6 + ["group", "duplicate", "restart_new"]))
        if flaw == "group" and members:
            members[0] = Member(members[0].name, members[0].policy, "nosuch")
        elif flaw == "duplicate" and members:
            members.append(members[0])
        elif flaw == "restart_new":
            restart = restart | {"ghost"}
        else:
            flaw = None
        inp = Reconfigure(members, base.GROUPS, restart, self.now)
        if flaw is not None:
            event(f"reconfigure refused: {flaw}")
            e = self.refused(inp)
            assert e.command == "Reconfigure" and e.reason
            return

        pre = dict(self.state)
        running_down = [n for n in self.workers if actions.get(n) in ("remove", "restart")]
        gone = [n for n in old_order if actions[n] == "remove"]
        d = self.feed(inp)
        expected: dict[str, ServerState | None] = {n: None for n in gone}
        expected |= {n: S.STARTING for n in restart if pre[n] in RESTARTS_FROM}
        retired = {
            n
            for n in kept
            if n not in restart
            and pre[n] is S.FAILED
            and new_members[n].policy.restart == "temporary"
        }
        if retired:
            event("a failed server made temporary stops")
        expected |= {n: S.STOPPED for n in retired}
        expected |= {n: S.STARTING if new_members[n].start == "eager" else S.STOPPED for n in added}
        self.check_touched(d, expected)
        assert all(e.reason in ("removed", "reconfigured", "added", "lazy") for e in d.events)
        assert all(n not in self.workers for n in retired)
        # Going down in reverse old declared order, then up in new declared order.
        self.check_stops(d, running_down)
        stops = {c.server: c.reason for c in d.commands if isinstance(c, StopServer)}
        assert all(stops[n] == ("removed" if n in gone else "reconfigured") for n in stops)
        starts = [c.server for c in d.commands if isinstance(c, StartServer)]
        assert starts == [n for n in order if expected.get(n) is S.STARTING]
        forgets = [c.server for c in d.commands if isinstance(c, Forget)]
        assert sorted(forgets) == sorted(gone)
        kinds = [type(c).__name__ for c in d.commands]
        if starts:
            assert "StopServer" not in kinds[kinds.index("StartServer") :]

        for n in gone:
            self.members.pop(n, None)
        for n in order:
            if n in added or n in restart:
                self.fresh(n)
                self.policy_from.pop(n, None)
            elif new_members[n].policy != self.members[n].policy:
                self.policy_from[n] = len(self.history[n])
            self.members[n] = new_members[n]
        self.order = list(order)
        assert self.lc.members == {n: new_members[n] for n in order}
        for g in base.GROUPS:
            assert self.lc.group_members(g) == tuple(n for n in order if new_members[n].group == g)

    @invariant()
    def intensity_is_never_exceeded(self) -> None:
        for n, times in self.history.items():
            if n not in self.members:
                continue
            p = self.members[n].policy
            for i, t in enumerate(times):
                if i >= self.policy_from.get(n, 0):
                    assert in_window(times[: i + 1], t, p.within) <= p.max_restarts, (n, times)


# A third of the base machine's runs (each reconfiguration draws a whole layout): about as
# long as the base machine on a shared machine; the thorough profile scales it up too.
_profile = settings.get_profile(PROFILE)
ReconfigureMachine.TestCase.settings = settings(
    _profile, max_examples=max(100, _profile.max_examples // 3)
)
TestReconfigureMachine = ReconfigureMachine.TestCase


# ---- examples ------------------------------------------------------------------------------


def _up(driver: Driver, *names: str, at: float = 1.0) -> None:
    for n in names:
        driver(Started(n, at))


def test_unchanged_servers_see_nothing_and_changed_ones_restart_with_a_fresh_budget() -> None:
    p = policy(max_restarts=1)
    drv = Driver([Member("a", p), Member("b", p), Member("c", p)])
    _up(drv, "a", "b", "c")
    drv(Exited("b", 2.0, "abnormal", "boom"))
    assert drv.state("b") is S.FAILED and drv.lc.record("b").restarts == 1
    d = drv(Reconfigure([Member("a", p), Member("b", p), Member("c", p)], {}, {"b", "c"}, 3.0))
    assert [(e.server, e.old, e.new, e.reason) for e in d.events] == [
        ("b", S.FAILED, S.STARTING, "reconfigured"),
        ("c", S.ACTIVE, S.STARTING, "reconfigured"),
    ]
    assert [type(c).__name__ for c in d.commands] == [
        "StopServer",
        "CancelRestart",
        "StartServer",
        "StartServer",
    ]
    assert drv.lc.record("b").restarts == 0 and drv.lc.record("b").restart_times == ()
    assert drv.state("a") is S.ACTIVE


def test_a_strategy_change_applies_to_the_next_failure_without_restarting_anyone() -> None:
    members = [Member("x", policy(), "g"), Member("y", policy(), "g"), Member("z", policy(), "g")]
    drv = Driver(members, {"g": "one_for_all"})
    _up(drv, "x", "y", "z")
    d = drv(Reconfigure(members, {"g": "rest_for_one"}, (), 2.0))
    assert d.events == () and d.commands == ()
    assert drv.lc.strategy_of("y") == "rest_for_one"
    d = drv(Exited("y", 3.0, "abnormal", "boom"))
    assert {e.server for e in d.events} == {"y", "z"}
    assert drv.state("x") is S.ACTIVE


def test_moving_a_member_out_of_its_group_keeps_it_running_and_out_of_the_group_restart() -> None:
    members = [Member("x", policy(), "g"), Member("y", policy(), "g")]
    drv = Driver(members, {"g": "one_for_all"})
    _up(drv, "x", "y")
    moved = [Member("x", policy(), "g"), Member("y", policy(), None)]
    d = drv(Reconfigure(moved, {"g": "one_for_all"}, (), 2.0))
    assert d.events == () and d.commands == ()
    drv(Exited("x", 3.0, "abnormal", "boom"))
    assert drv.state("y") is S.ACTIVE and drv.lc.group_members("g") == ("x",)


def test_a_removed_timer_owner_leaves_the_group_restart_to_its_siblings() -> None:
    members = [Member("x", policy(), "g"), Member("y", policy(), "g")]
    drv = Driver(members, {"g": "one_for_all"})
    _up(drv, "x", "y")
    drv(Exited("x", 2.0, "abnormal", "boom"))
    assert drv.state("y") is S.FAILED
    d = drv(Reconfigure([Member("y", policy(), "g")], {"g": "one_for_all"}, (), 2.5))
    (schedule,) = [c for c in d.commands if type(c).__name__ == "ScheduleRestart"]
    assert schedule.server == "y" and schedule.delay == pytest.approx(0.5)
    assert drv.lc.names == ("y",)


def test_a_stopped_server_stays_stopped_but_a_dropped_one_gets_another_chance() -> None:
    p = policy(max_restarts=0)
    drv = Driver([Member("s", p), Member("d", p), Member("lazy", p, start="lazy")])
    _up(drv, "s", "d")
    drv(base.Stop("s", 2.0))
    drv(Exited("d", 2.0, "abnormal", "boom"))
    assert drv.state("d") is S.DROPPED
    d = drv(
        Reconfigure(
            [Member("s", p), Member("d", p), Member("lazy", p, start="lazy")],
            {},
            {"s", "d", "lazy"},
            3.0,
        )
    )
    assert [(e.server, e.new) for e in d.events] == [("d", S.STARTING)]
    assert drv.state("s") is S.STOPPED and drv.state("lazy") is S.STOPPED
    assert drv.lc.record("lazy").wakeable


@pytest.mark.parametrize(
    ("members", "groups", "restart", "reason"),
    [
        ([Member("a"), Member("a")], {}, (), "duplicate server name"),
        ([Member("a", group="nope")], {}, (), "unknown group 'nope'"),
        ([Member("a")], {}, {"b"}, "only a server that stays supervised restarts"),
        ([Member("a")], {}, {"new"}, "only a server that stays supervised restarts"),
    ],
)
def test_a_bad_reconfiguration_is_refused_whole(
    members: list[Member], groups: dict[str, Any], restart: Any, reason: str
) -> None:
    drv = Driver([Member("a"), Member("b")])
    _up(drv, "a", "b")
    before = drv.lc
    with pytest.raises(CommandRefusedError) as info:
        drv(Reconfigure([*members, Member("new")], groups, restart, 2.0))
    assert info.value.reason == reason and info.value.command == "Reconfigure"
    assert drv.lc is before


def test_reconfigure_events_are_plain_lifecycle_events() -> None:
    drv = Driver([Member("a")])
    d = drv(Reconfigure([Member("b")], {}, (), 1.0))
    assert all(isinstance(e, LifecycleEvent) and e.kind == "state" for e in d.events)
    assert [(e.server, e.new, e.reason) for e in d.events] == [
        ("a", None, "removed"),
        ("b", S.STARTING, "added"),
    ]
