"""What the brief says the lifecycle core must do, written out independently of the core.

The tests compare the core's tables and behaviour against these, so a change to the core's
table that the semantics do not allow fails a test instead of silently moving both.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence

from hypothesis import HealthCheck, settings

from mcpvisor.specs import Backoff, RestartPolicy
from mcpvisor.supervisor.lifecycle import (
    Command,
    Decision,
    Lifecycle,
    LifecycleEvent,
    Member,
    ServerState,
)

PROFILE = "mcpvisor-lifecycle"
"""The hypothesis budget of the state-machine test: at least 500 runs of 50 steps in CI.

``MCPVISOR_HYPOTHESIS_PROFILE=thorough`` runs ten times as many machines, each longer; any
other value (or none) runs the CI budget. Registered here rather than in a conftest.py: other
test directories import helpers with ``from conftest import ...``, which a second conftest
module in this tree would shadow.
"""
_BUDGETS = {"ci": (500, 50), "thorough": (5000, 80)}  # (max_examples, stateful_step_count)
_max_examples, _steps = _BUDGETS.get(
    os.environ.get("MCPVISOR_HYPOTHESIS_PROFILE", ""), _BUDGETS["ci"]
)
settings.register_profile(
    PROFILE,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    max_examples=_max_examples,
    stateful_step_count=_steps,
)

S = ServerState
ALL_STATES: tuple[ServerState, ...] = tuple(ServerState)

# For each command on an existing server: the states it applies in -> where it leads.
# Wake additionally needs a STOPPED server that was lazy or idle.
COMMAND_TABLE: dict[str, dict[ServerState, ServerState | None]] = {
    "RestartNow": {S.ACTIVE: S.STARTING, S.FAILED: S.STARTING},
    "Drop": {s: S.DROPPED for s in (S.STARTING, S.ACTIVE, S.FAILED, S.STOPPED)},
    "Stop": {s: S.STOPPED for s in (S.STARTING, S.ACTIVE, S.FAILED)},
    "Revive": {S.DROPPED: S.STARTING, S.STOPPED: S.STARTING},
    "Wake": {S.STOPPED: S.STARTING},
    "Remove": {s: None for s in ALL_STATES},
}
WAKEABLE = frozenset({"lazy", "idle"})
LIVE = frozenset({S.STARTING, S.ACTIVE, S.FAILED})
RUNNING = frozenset({S.STARTING, S.ACTIVE})


def wants_restart(restart: str, kind: str) -> bool:
    return restart == "permanent" or (restart == "transient" and kind == "abnormal")


def in_window(history: Sequence[float], at: float, within: float) -> int:
    """Restarts in the closed window [at - within, at]."""
    return sum(1 for t in history if t <= at and at - t <= within)


def never(*_: object) -> float:
    raise AssertionError("draw() called when no delay is due")


def zero() -> float:
    return 0.0


def policy(
    restart: str = "permanent",
    *,
    max_restarts: int = 3,
    within: float = 10.0,
    initial: float = 1.0,
    maximum: float = 8.0,
    multiplier: float = 2.0,
    jitter: float = 0.0,
    reset_after: float = 5.0,
) -> RestartPolicy:
    return RestartPolicy(
        restart=restart,  # type: ignore[arg-type]
        max_restarts=max_restarts,
        within=within,
        backoff=Backoff(initial=initial, max=maximum, multiplier=multiplier, jitter=jitter),
        reset_after=reset_after,
    )


class Driver:
    """Feeds inputs to a Lifecycle and keeps the full transcript, for example tests."""

    def __init__(
        self, members: Sequence[Member], groups: dict[str, str] | None = None, at: float = 0.0
    ) -> None:
        d = Lifecycle.initial(members, groups or {}, at)  # type: ignore[arg-type]
        self.lc = d.state
        self.last = d
        self.events: list[LifecycleEvent] = list(d.events)
        self.commands: list[Command] = list(d.commands)

    def __call__(self, inp: object, draw: Callable[[], float] = zero) -> Decision:
        d = self.lc.step(inp, draw)  # type: ignore[arg-type]
        self.lc = d.state
        self.last = d
        self.events += d.events
        self.commands += d.commands
        return d

    def state(self, name: str) -> ServerState:
        return self.lc.state_of(name)

    def states(self) -> dict[str, ServerState]:
        return {n: self.lc.state_of(n) for n in self.lc.names}

    def failed_events(self, name: str) -> Iterator[LifecycleEvent]:
        return (e for e in self.events if e.server == name and e.new is S.FAILED)
