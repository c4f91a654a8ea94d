"""The vocabulary of the lifecycle core: states, the legal-edge table, inputs, commands, events.

Everything here is plain frozen data. The decisions that use it live in
:mod:`mcpvisor.supervisor.lifecycle`, which re-exports every public name.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import Final, Literal, TypeAlias

import attrs

from mcpvisor.specs.errors import MCPVisorError
from mcpvisor.specs.policy import RestartPolicy, Strategy
from mcpvisor.specs.servers import ServerSpec, StartMode


class ServerState(enum.Enum):
    """Where one supervised server is in its life.

    - ``STARTING``: a worker is connecting and handshaking; requests wait.
    - ``ACTIVE``: the session is up and serving.
    - ``FAILED``: it died and a restart is scheduled after a backoff delay.
    - ``DROPPED``: the supervisor gave up on it (restart intensity exceeded, or a manual
      ``Drop``); only ``Revive`` brings it back.
    - ``STOPPED``: not running and not meant to be: stopped by command, exited without a
      restart being due (a ``temporary`` server, a ``transient`` one exiting normally), idle,
      or a ``lazy`` server not started yet. The last two are *wakeable*: a request starts them.
    """

    STARTING = "starting"
    ACTIVE = "active"
    FAILED = "failed"
    DROPPED = "dropped"
    STOPPED = "stopped"


STARTING = ServerState.STARTING
ACTIVE = ServerState.ACTIVE
FAILED = ServerState.FAILED
DROPPED = ServerState.DROPPED
STOPPED = ServerState.STOPPED

ExitKind = Literal["normal", "abnormal"]
"""How a worker ended: ``normal`` (the server closed the session cleanly) or ``abnormal``."""


EDGES: Mapping[tuple[ServerState | None, ServerState | None], frozenset[str]] = MappingProxyType(
    {
        (None, STARTING): frozenset({"start", "added"}),
        (None, STOPPED): frozenset({"lazy"}),
        (STARTING, STARTING): frozenset({"reconfigured"}),
        (STARTING, ACTIVE): frozenset({"ready"}),
        (STARTING, FAILED): frozenset({"start_failed", "crashed", "exited", "group_restart"}),
        (STARTING, STOPPED): frozenset(
            {"start_failed", "crashed", "exited", "group_restart", "stopped"}
        ),
        (STARTING, DROPPED): frozenset({"intensity", "dropped"}),
        (STARTING, None): frozenset({"removed"}),
        (ACTIVE, STARTING): frozenset({"restart", "reconfigured"}),
        (ACTIVE, FAILED): frozenset({"crashed", "exited", "group_restart"}),
        (ACTIVE, STOPPED): frozenset({"crashed", "exited", "group_restart", "stopped", "idle"}),
        (ACTIVE, DROPPED): frozenset({"intensity", "dropped"}),
        (ACTIVE, None): frozenset({"removed"}),
        (FAILED, STARTING): frozenset({"backoff", "restart", "reconfigured"}),
        (FAILED, STOPPED): frozenset({"stopped", "reconfigured"}),
        (FAILED, DROPPED): frozenset({"intensity", "dropped"}),
        (FAILED, None): frozenset({"removed"}),
        (DROPPED, STARTING): frozenset({"revived", "reconfigured"}),
        (DROPPED, None): frozenset({"removed"}),
        (STOPPED, STARTING): frozenset({"revived", "wake"}),
        (STOPPED, DROPPED): frozenset({"dropped"}),
        (STOPPED, None): frozenset({"removed"}),
    }
)
"""Every legal state change ``(old, new)`` and the reasons that may label it.

``None`` is "not supervised": ``(None, x)`` is a server appearing, ``(x, None)`` one being
removed. The reasons:

- ``start`` / ``added``: an eager server starting with the supervisor / added later.
- ``lazy``: a lazy server registered without starting.
- ``ready``: the handshake finished.
- ``crashed`` / ``exited`` / ``start_failed``: the worker ended abnormally / normally / never
  got ready. To FAILED when a restart is due, to STOPPED when the restart type says none is.
- ``group_restart``: a sibling failed and the group strategy took this server down too (to
  FAILED, or to STOPPED for a ``temporary`` server, which a group restart never restarts).
- ``backoff``: the backoff delay elapsed; the restart begins.
- ``restart``: a manual ``RestartNow``.
- ``intensity``: more restarts than ``max_restarts`` within ``within`` seconds (or more
  consecutive failed starts than ``max_restarts``), for this server or its group.
- ``dropped`` / ``stopped`` / ``revived`` / ``removed``: the manual commands.
- ``idle``: no request for ``idle_shutdown`` seconds; ``wake``: a request arrived for an
  idle or lazy server.
- ``reconfigured``: a :class:`Reconfigure` changed the server's spec, so it starts again under
  the new one with a fresh restart budget (from STARTING too: the attempt under the old spec
  is abandoned); or a FAILED server whose new restart type is ``temporary`` stops waiting for
  its restart (to STOPPED). ``added`` and ``removed`` also label the servers a
  reconfiguration adds and removes.

An ``escalation`` event (kind ``"escalation"``, reason ``"escalated"``) is not a state change and
is not in this table.
"""

TRANSITIONS: Mapping[ServerState | None, frozenset[ServerState | None]] = MappingProxyType(
    {old: frozenset(new for (o, new) in EDGES if o == old) for old in (None, *ServerState)}
)
"""The legal-edge table: ``TRANSITIONS[old]`` is every state reachable from ``old`` in one step.

Derived from :data:`EDGES`, which also names the reasons; the core checks every change it makes
against it.
"""

MANUAL: Mapping[str, Mapping[ServerState, ServerState | None]] = MappingProxyType(
    {
        "RestartNow": MappingProxyType({ACTIVE: STARTING, FAILED: STARTING}),
        "Drop": MappingProxyType(
            {STARTING: DROPPED, ACTIVE: DROPPED, FAILED: DROPPED, STOPPED: DROPPED}
        ),
        "Stop": MappingProxyType({STARTING: STOPPED, ACTIVE: STOPPED, FAILED: STOPPED}),
        "Revive": MappingProxyType({DROPPED: STARTING, STOPPED: STARTING}),
        "Wake": MappingProxyType({STOPPED: STARTING}),
        "Remove": MappingProxyType({s: None for s in ServerState}),
    }
)
"""For each command on an existing server: the states it applies in, and the state it leads to.

Any other state refuses the command with :class:`CommandRefusedError`. ``Wake`` further needs
the STOPPED server to be wakeable (stopped because it was lazy or idle).
"""

WAKEABLE_REASONS = frozenset({"lazy", "idle"})


def render_diagram() -> str:
    """A fenced mermaid ``stateDiagram-v2`` block of :data:`EDGES`, for ARCHITECTURE.md."""
    lines = ["```mermaid", "stateDiagram-v2"]
    for (old, new), reasons in EDGES.items():
        src = "[*]" if old is None else old.value
        dst = "[*]" if new is None else new.value
        lines.append(f"    {src} --> {dst}: {', '.join(sorted(reasons))}")
    lines.append("```")
    return "\n".join(lines) + "\n"


@attrs.frozen
class Member:
    """What the lifecycle core needs to know about one supervised server."""

    name: str
    policy: RestartPolicy = attrs.field(factory=RestartPolicy)
    group: str | None = None
    required: bool = False
    start: StartMode = "eager"

    @classmethod
    def from_spec(cls, spec: ServerSpec) -> Member:
        """The member for a validated server spec."""
        return cls(
            name=spec.name,
            policy=spec.restart,
            group=spec.group,
            required=spec.required,
            start=spec.start,
        )


# Inputs. The runtime reports what happened (Started .. IdleTimeout); an input that no longer
# applies is a no-op. Commands (RestartNow .. Wake) that make no sense now are refused.


@attrs.frozen
class Started:
    """The runtime reports: the worker finished its handshake and is serving."""

    server: str
    at: float


@attrs.frozen
class StartFailed:
    """The runtime reports: the worker could not connect or handshake."""

    server: str
    at: float
    cause: str


@attrs.frozen
class Exited:
    """The runtime reports: the worker ended on its own (not because it was told to stop)."""

    server: str
    at: float
    kind: ExitKind
    cause: str


@attrs.frozen
class TimerFired:
    """The runtime reports: the timer armed by ``ScheduleRestart(server, _, token)`` elapsed."""

    server: str
    at: float
    token: int


@attrs.frozen
class IdleTimeout:
    """The runtime reports: an ACTIVE server saw no request for its ``idle_shutdown``."""

    server: str
    at: float


@attrs.frozen
class RestartNow:
    """Command: restart at once, skipping backoff; not counted toward intensity."""

    server: str
    at: float


@attrs.frozen
class Drop:
    """Command: give up on the server (DROPPED); a required server escalates."""

    server: str
    at: float


@attrs.frozen
class Revive:
    """Command: start a DROPPED or STOPPED server with a fresh restart budget."""

    server: str
    at: float


@attrs.frozen
class Stop:
    """Command: stop the server and keep it stopped (not wakeable)."""

    server: str
    at: float


@attrs.frozen
class Add:
    """Command: supervise a new server, appended to the declared order."""

    member: Member
    at: float


@attrs.frozen
class Remove:
    """Command: stop the server if it runs and forget it."""

    server: str
    at: float


@attrs.frozen
class Wake:
    """The runtime asks: a request arrived for a lazy or idle server; start it."""

    server: str
    at: float


def _member_tuple(value: Iterable[Member]) -> tuple[Member, ...]:
    return tuple(value)


def _frozen_groups(value: Mapping[str, Strategy]) -> Mapping[str, Strategy]:
    return MappingProxyType(dict(value))


def _name_set(value: Iterable[str]) -> frozenset[str]:
    return frozenset(value)


@attrs.frozen
class Reconfigure:
    """Command: adopt a new configuration in one step, as a reload does.

    ``members`` is everything supervised afterwards, in the new declared order: a name not
    supervised yet is added, a supervised name missing from it is removed, and every other
    member is replaced by its new value in place (policy, group, required), its state and
    session untouched. ``groups`` replaces every group's strategy. ``restart`` names the kept
    members whose session must start again under a new spec: running, failed or dropped ones
    go to STARTING (reason ``reconfigured``) with a fresh restart budget; stopped ones stay
    stopped and only get the fresh budget, so a lazy or idle server picks the new spec up on
    its next request and a stopped one stays stopped.
    """

    members: tuple[Member, ...] = attrs.field(converter=_member_tuple)
    groups: Mapping[str, Strategy] = attrs.field(converter=_frozen_groups, hash=False)
    restart: frozenset[str] = attrs.field(converter=_name_set)
    at: float


Input: TypeAlias = (
    Started
    | StartFailed
    | Exited
    | TimerFired
    | IdleTimeout
    | RestartNow
    | Drop
    | Revive
    | Stop
    | Add
    | Remove
    | Wake
    | Reconfigure
)
"""Anything :meth:`Lifecycle.step` accepts."""


# Commands for the runtime.


@attrs.frozen
class StartServer:
    """Spawn a worker for ``server``; report ``Started`` or ``StartFailed``, later ``Exited``."""

    server: str


@attrs.frozen
class StopServer:
    """Stop ``server``'s worker. Its end is expected: do not report it as ``Exited``."""

    server: str
    reason: str


@attrs.frozen
class ScheduleRestart:
    """Report ``TimerFired(server, token)`` after ``delay`` seconds."""

    server: str
    delay: float
    token: int


@attrs.frozen
class CancelRestart:
    """The timer ``token`` no longer matters. Acting on it is optional: stale tokens are no-ops."""

    server: str
    token: int


@attrs.frozen
class Escalate:
    """A required server was dropped: the supervisor cannot do its job any more."""

    server: str
    cause: str


@attrs.frozen
class Forget:
    """``server`` was removed: drop its worker, timers and every other piece of bookkeeping."""

    server: str


Command: TypeAlias = StartServer | StopServer | ScheduleRestart | CancelRestart | Escalate | Forget
"""Anything a :class:`Decision` asks the runtime to do, in order."""


@attrs.frozen
class LifecycleEvent:
    """One observable change: a state change (kind ``"state"``) or an escalation.

    ``old``/``new`` are None when the server appears/is removed. ``reason`` is one of the
    words listed in :data:`EDGES` (``"escalated"`` for an escalation, whose ``old`` and ``new``
    are both DROPPED). ``attempt`` is the consecutive restart number the backoff is on, set on
    changes to FAILED and on the STARTING that the backoff timer begins (for a group restart,
    the number of the member that failed); ``delay`` is the scheduled backoff on changes to
    FAILED; ``cause`` is the error text behind the change, if any. The runtime also emits
    ``"tools_changed"``, ``"resources_changed"`` and ``"prompts_changed"`` events (old and new
    both the current state, reason the kind), one per part a ``list_changed`` refetched even
    when nothing differs, and one ``"reload"`` event per reconfiguration (server ``"*"``,
    reason ``"applied"`` with a summary of the changes as ``cause``, or ``"rejected"`` with the
    error that kept the old configuration); the core never does.
    """

    server: str
    old: ServerState | None
    new: ServerState | None
    reason: str
    at: float
    attempt: int = 0
    delay: float | None = None
    cause: str | None = None
    kind: Literal[
        "state", "escalation", "tools_changed", "resources_changed", "prompts_changed", "reload"
    ] = "state"


@attrs.frozen
class ServerRecord:
    """What the core knows about one server.

    - ``state``, ``since`` (time of the last state change), ``reason`` (of that change).
    - ``attempt``: the backoff's consecutive restart number n of the latest automatic restart
      (0 after a fresh budget, or after ``reset_after`` seconds of uptime).
    - ``restarts``: automatic restarts (entries into FAILED) since the server was added or
      last revived, in total.
    - ``restart_times``: when those restarts were decided, keeping only the ones that could
      still count toward intensity as of the latest (at most ``within`` seconds before it).
    - ``failed_starts``: consecutive failed starts since it was last ready.
    - ``last_cause``: the most recent error text.
    - ``active_since``: when it became ACTIVE, while it is.
    - ``wakeable``: STOPPED because it was lazy or idle, so a request may ``Wake`` it.
    - ``token``: while FAILED, the restart timer it waits on (shared by a group restart).
    """

    state: ServerState
    since: float
    reason: str
    attempt: int = 0
    restarts: int = 0
    restart_times: tuple[float, ...] = ()
    failed_starts: int = 0
    last_cause: str | None = None
    active_since: float | None = None
    wakeable: bool = False
    token: int | None = None


_VERBS: Final = {
    "RestartNow": "restart",
    "Stop": "stop",
    "Drop": "drop",
    "Revive": "revive",
    "Wake": "wake",
    "Remove": "remove",
}
"""The words a refusal uses for a command: the handle's methods, not the core's inputs."""


class CommandRefusedError(MCPVisorError):
    """A command that makes no sense for the server's current state (or an unknown server).

    ``server`` and ``command`` name what was asked, ``state`` is the server's state (None if it
    is unknown) and ``reason`` says why, in words.
    """

    def __init__(self, server: str, command: str, state: ServerState | None, reason: str) -> None:
        self.server = server
        self.command = command
        self.state = state
        self.reason = reason
        where = "unknown" if state is None else state.value
        verb = _VERBS.get(command, command)
        super().__init__(f"cannot {verb} {server!r} (state: {where}): {reason}")


class UnknownServerRefusedError(CommandRefusedError, LookupError):
    """A name the core does not supervise: ``state`` is None, ``reason`` "unknown server".

    A runtime bug rather than a user mistake: callers resolve names first and raise the
    client-facing :class:`mcpvisor.UnknownServerError` (with its did-you-mean) themselves.
    """

    def __init__(self, server: str, command: str) -> None:
        super().__init__(server, command, None, "unknown server")
