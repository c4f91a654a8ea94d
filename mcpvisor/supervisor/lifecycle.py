"""The supervisor's brain: restart policies as a pure state machine, modelled on OTP.

:class:`Lifecycle` holds every server's state. :meth:`Lifecycle.step` takes one input (something
the runtime saw, or a command) and returns a :class:`Decision`: the next state, the commands the
runtime must carry out in order, and the events to publish. Nothing here does I/O, reads a clock
or draws a random number: time comes in on every input and jitter through ``draw``.

Semantics, in OTP's terms:

- **Restart types.** ``permanent`` always restarts; ``transient`` only after an abnormal exit
  (a failed start is abnormal); ``temporary`` never. A server that is not restarted goes to
  STOPPED, and its group is not touched.
- **Strategies.** Outside a group or in a ``one_for_one`` group, a failure touches only the
  failed server. In a ``one_for_all`` group, it takes down every other live member; in a
  ``rest_for_one`` group, the live members declared after the failed one. "Taken down" means:
  a STARTING or ACTIVE sibling is stopped (``StopServer`` in reverse declared order) and goes
  to FAILED with reason ``group_restart``; a ``temporary`` sibling is stopped and goes to
  STOPPED instead, as OTP never restarts it; a sibling already FAILED joins the group's restart
  (its own timer no longer matters and it is not counted again); DROPPED and STOPPED siblings
  stay as they are. One timer, armed on the failed server, brings the whole set back: when it
  fires, every member still waiting on it gets ``StartServer`` in declared order. (The runtime
  starts each one once its stopped session has ended, as OTP restarts a terminated child.)
- **Intensity.** Every entry into FAILED is one restart, counted at the moment it is decided.
  A restart that would make more than ``max_restarts`` restarts in the closed window
  ``[at - within, at]`` is not made: a restart exactly ``within`` seconds earlier still counts,
  as in OTP. Also, more than ``max_restarts`` consecutive failed starts (the server never got
  ready in between) drop the server whatever their spacing, so a bogus command gives up after
  ``max_restarts + 1`` attempts even when slow attempts would spread them beyond any window.
  Ungrouped or one-for-one, the server alone goes to DROPPED. In a one_for_all or
  rest_for_one group, the check covers every member the restart would count for, and if any
  of them would exceed its budget the whole group (every live member) goes to DROPPED, like an
  OTP supervisor that gives up and takes its children with it.
- **Backoff.** The failed server's n-th consecutive restart waits
  ``policy.backoff.delay(n, draw())``. n goes back to 1 once the server has been ACTIVE for
  ``reset_after`` seconds (checked when it leaves ACTIVE). A group restart waits the failed
  member's delay; the siblings' own counters are not advanced.
- **Escalation.** Every time a ``required`` server reaches DROPPED, by intensity or by a manual
  ``Drop``, the decision carries exactly one :class:`Escalate` and one ``"escalation"`` event.
  (A required server that should go away quietly is ``Stop``-ped instead.)
- **Commands** act on their server only, never on its group, and are refused with
  :class:`CommandRefusedError` outside the states listed in :data:`MANUAL`:
  ``RestartNow`` from ACTIVE (stop, then start) or FAILED (its timer no longer matters), not
  from STARTING (it is already restarting); ``Drop`` from anything but DROPPED; ``Stop`` from
  STARTING, ACTIVE or FAILED; ``Revive`` from DROPPED or STOPPED, with a fresh budget (restart
  history, backoff and failed-start counters cleared); ``Wake`` from a STOPPED server that was
  lazy or idle; ``Remove`` from anywhere; ``Add`` of a name not yet supervised, into a known
  group. A manual restart is neither counted nor backed off, and leaves the backoff counter
  where it was.
- **Reconfiguration** (:class:`Reconfigure`) is one step: it is refused as a whole (nothing
  changes) if the new members repeat a name, name an undeclared group, or ask to restart a
  server that is not kept. Otherwise, servers going down (removed ones and running restarted
  ones) are stopped in reverse declared order, removed ones are forgotten, the new members,
  groups and declared order replace the old, and then the restarted and added servers start
  in the new declared order. Kept servers that are not restarted see no command and no event
  (a group restart they wait on keeps its timer), except a FAILED one whose new restart type
  is ``temporary``: it goes to STOPPED, as a temporary server is never restarted. Only the
  restarted servers start again, even in a one_for_all or rest_for_one group: a reload is
  not a failure.
- **Stale inputs** are no-ops (an empty decision with the same state): ``Started`` or
  ``StartFailed`` unless STARTING, ``Exited`` unless STARTING or ACTIVE, ``IdleTimeout`` unless
  ACTIVE, and ``TimerFired`` whose token is not pending or was armed for another server. An
  ``Exited`` while STARTING counts as a failed start. Every input naming an unknown server is
  refused with :class:`UnknownServerRefusedError`: after ``Forget`` the runtime must drop that
  server's timers.
- When the server that armed a pending timer leaves it (a command moved it) while siblings
  still wait on it, the timer is cancelled and re-armed on the first remaining sibling for the
  time that was left, so a ``Forget`` never strands a group restart.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from types import MappingProxyType

import attrs

from mcpvisor.specs.policy import Strategy
from mcpvisor.specs.servers import SupervisorSpec
from mcpvisor.supervisor._lifecycle_model import (
    ACTIVE,
    DROPPED,
    EDGES,
    FAILED,
    MANUAL,
    STARTING,
    STOPPED,
    TRANSITIONS,
    WAKEABLE_REASONS,
    Add,
    CancelRestart,
    Command,
    CommandRefusedError,
    Drop,
    Escalate,
    Exited,
    ExitKind,
    Forget,
    IdleTimeout,
    Input,
    LifecycleEvent,
    Member,
    Reconfigure,
    Remove,
    RestartNow,
    Revive,
    ScheduleRestart,
    ServerRecord,
    ServerState,
    Started,
    StartFailed,
    StartServer,
    Stop,
    StopServer,
    TimerFired,
    UnknownServerRefusedError,
    Wake,
    render_diagram,
)

__all__ = [
    "EDGES",
    "MANUAL",
    "TRANSITIONS",
    "Add",
    "CancelRestart",
    "Command",
    "CommandRefusedError",
    "Decision",
    "Drop",
    "Escalate",
    "ExitKind",
    "Exited",
    "Forget",
    "IdleTimeout",
    "Input",
    "Lifecycle",
    "LifecycleEvent",
    "Member",
    "Reconfigure",
    "Remove",
    "RestartNow",
    "Revive",
    "ScheduleRestart",
    "ServerRecord",
    "ServerState",
    "StartFailed",
    "StartServer",
    "Started",
    "Stop",
    "StopServer",
    "TimerFired",
    "UnknownServerRefusedError",
    "Wake",
    "render_diagram",
]

_LIVE = frozenset({STARTING, ACTIVE, FAILED})
_RUNNING = frozenset({STARTING, ACTIVE})


@attrs.frozen
class _Pending:
    """A scheduled restart: the servers waiting in FAILED for one timer."""

    owner: str
    members: tuple[str, ...]
    due: float
    attempt: int


@attrs.frozen
class Decision:
    """What one step decided: the next ``state``, ``commands`` to run in order, ``events``."""

    state: Lifecycle
    commands: tuple[Command, ...]
    events: tuple[LifecycleEvent, ...]


@attrs.frozen(eq=False, repr=False)
class Lifecycle:
    """Every supervised server's state, immutable; :meth:`step` computes the next one.

    Build it with :meth:`initial` (or :meth:`from_spec`) and carry out the returned decision.
    See the module documentation for the semantics.
    """

    _members: Mapping[str, Member]
    _groups: Mapping[str, Strategy]
    _group_members: Mapping[str, tuple[str, ...]]
    _records: Mapping[str, ServerRecord]
    _pending: Mapping[int, _Pending]
    _next_token: int

    @classmethod
    def initial(
        cls, members: Sequence[Member], groups: Mapping[str, Strategy], at: float
    ) -> Decision:
        """Start supervising ``members`` in declared order.

        Eager members go to STARTING with a ``StartServer`` each, in order; lazy ones to
        STOPPED (reason ``lazy``, wakeable). Raises ValueError on duplicate names or a member
        in an undeclared group.
        """
        seen: set[str] = set()
        for m in members:
            if m.name in seen:
                raise ValueError(f"duplicate server name {m.name!r}")
            if m.group is not None and m.group not in groups:
                raise ValueError(f"server {m.name!r} is in undeclared group {m.group!r}")
            seen.add(m.name)
        empty = cls(
            members={},
            groups=MappingProxyType(dict(groups)),
            group_members={},
            records={},
            pending={},
            next_token=1,
        )
        tx = _Tx(empty, at)
        for m in members:
            tx.add(m, "start")
        return tx.decision()

    @classmethod
    def from_spec(cls, spec: SupervisorSpec, at: float) -> Decision:
        """:meth:`initial` for a validated :class:`SupervisorSpec`."""
        return cls.initial([Member.from_spec(s) for s in spec.servers], spec.groups, at)

    def step(self, inp: Input, draw: Callable[[], float]) -> Decision:
        """Decide what ``inp`` changes. ``draw()`` returns a uniform U in [0, 1) for jitter.

        Raises :class:`CommandRefusedError` for a command that makes no sense now, and
        :class:`UnknownServerRefusedError` for any input naming a server that is not supervised.
        A stale runtime input returns a decision with this same state and nothing to do.
        """
        if isinstance(inp, Add):
            return self._add(inp)
        if isinstance(inp, Reconfigure):
            return self._reconfigure(inp)
        command = type(inp).__name__
        rec = self._records.get(inp.server)
        if rec is None:
            raise UnknownServerRefusedError(inp.server, command)
        tx = _Tx(self, inp.at)
        match inp:
            case Started():
                if rec.state is not STARTING:
                    return self._unchanged()
                tx.move(
                    inp.server,
                    ACTIVE,
                    "ready",
                    changes={"failed_starts": 0, "active_since": inp.at},
                )
            case StartFailed():
                if rec.state is not STARTING:
                    return self._unchanged()
                tx.fail(inp.server, "abnormal", inp.cause, "start_failed", draw)
            case Exited():
                if rec.state not in _RUNNING:
                    return self._unchanged()
                reason = "crashed" if inp.kind == "abnormal" else "exited"
                tx.fail(inp.server, inp.kind, inp.cause, reason, draw)
            case TimerFired():
                pending = self._pending.get(inp.token)
                if pending is None or pending.owner != inp.server:
                    return self._unchanged()
                tx.fire(inp.token)
            case IdleTimeout():
                if rec.state is not ACTIVE:
                    return self._unchanged()
                tx.commands.append(StopServer(inp.server, "idle"))
                tx.move(inp.server, STOPPED, "idle")
            case _:
                self._check_command(command, inp.server, rec)
                tx.command(inp)
        return tx.decision()

    def state_of(self, server: str) -> ServerState:
        """``server``'s state; :class:`UnknownServerRefusedError` if it is not supervised."""
        return self.record(server).state

    def record(self, server: str) -> ServerRecord:
        """Everything the core knows about ``server``; see :class:`ServerRecord`."""
        rec = self._records.get(server)
        if rec is None:
            raise UnknownServerRefusedError(server, "look up")
        return rec

    def member(self, server: str) -> Member:
        """The :class:`Member` that ``server`` was added as."""
        if server not in self._members:
            raise UnknownServerRefusedError(server, "look up")
        return self._members[server]

    @property
    def names(self) -> tuple[str, ...]:
        """Supervised server names in declared order, servers added later at the end."""
        return tuple(self._members)

    @property
    def members(self) -> Mapping[str, Member]:
        """Every member by name, in declared order."""
        return MappingProxyType(self._members)

    @property
    def groups(self) -> Mapping[str, Strategy]:
        """Every declared group's strategy."""
        return self._groups

    def group_members(self, group: str) -> tuple[str, ...]:
        """The supervised members of ``group``, in declared order."""
        return self._group_members.get(group, ())

    def strategy_of(self, server: str) -> Strategy:
        """The strategy that applies when ``server`` fails (one_for_one outside a group)."""
        group = self.member(server).group
        return "one_for_one" if group is None else self._groups[group]

    def pending_restart(self, token: int) -> tuple[str, ...]:
        """The servers waiting in FAILED on restart timer ``token`` (empty if it is stale)."""
        pending = self._pending.get(token)
        return () if pending is None else pending.members

    def __repr__(self) -> str:
        states = ", ".join(f"{n}={r.state.value}" for n, r in self._records.items())
        return f"Lifecycle({states})"

    def _unchanged(self) -> Decision:
        return Decision(self, (), ())

    def _add(self, inp: Add) -> Decision:
        m = inp.member
        if m.name in self._records:
            state = self._records[m.name].state
            raise CommandRefusedError(m.name, "Add", state, "a server of that name exists")
        if m.group is not None and m.group not in self._groups:
            raise CommandRefusedError(m.name, "Add", None, f"unknown group {m.group!r}")
        tx = _Tx(self, inp.at)
        tx.add(m, "added")
        return tx.decision()

    def _reconfigure(self, inp: Reconfigure) -> Decision:
        seen: set[str] = set()
        for m in inp.members:
            state = self._records[m.name].state if m.name in self._records else None
            if m.name in seen:
                raise CommandRefusedError(m.name, "Reconfigure", state, "duplicate server name")
            if m.group is not None and m.group not in inp.groups:
                raise CommandRefusedError(
                    m.name, "Reconfigure", state, f"unknown group {m.group!r}"
                )
            seen.add(m.name)
        for name in sorted(inp.restart):
            if name not in seen or name not in self._records:
                state = self._records[name].state if name in self._records else None
                raise CommandRefusedError(
                    name, "Reconfigure", state, "only a server that stays supervised restarts"
                )
        tx = _Tx(self, inp.at)
        tx.reconfigure(inp)
        return tx.decision()

    @staticmethod
    def _check_command(command: str, server: str, rec: ServerRecord) -> None:
        allowed = MANUAL[command]
        if rec.state not in allowed:
            raise CommandRefusedError(server, command, rec.state, _refusal(command, rec.state))
        if command == "Wake" and not rec.wakeable:
            raise CommandRefusedError(
                server,
                command,
                rec.state,
                f"it was stopped ({rec.reason}), not idle or lazy; use revive() to start it",
            )


_HINTS: Mapping[str, str] = {
    "RestartNow": "restart() applies to active or failed servers",
    "Stop": "stop() applies to starting, active or failed servers",
    "Revive": "revive() applies to dropped or stopped servers",
    "Wake": "a request wakes only stopped servers that were idle or lazy",
}


def _refusal(command: str, state: ServerState) -> str:
    if command == "RestartNow" and state is STARTING:
        return "it is already starting"
    if command == "RestartNow":
        return f"it is {state.value}; use revive() to start it"
    if command == "Drop":
        return "it is already dropped"
    return f"it is {state.value}; {_HINTS[command]}"


def _wants_restart(restart: str, kind: ExitKind) -> bool:
    return restart == "permanent" or (restart == "transient" and kind == "abnormal")


class _Tx:
    """One step's work: copy-on-write views of the state, and the commands and events so far."""

    def __init__(self, base: Lifecycle, at: float) -> None:
        self.at = at
        self.groups = base._groups
        self.members: Mapping[str, Member] = base._members
        self.group_members: Mapping[str, tuple[str, ...]] = base._group_members
        self.records: Mapping[str, ServerRecord] = base._records
        self.pending: Mapping[int, _Pending] = base._pending
        self.next_token = base._next_token
        self.commands: list[Command] = []
        self.events: list[LifecycleEvent] = []
        self._order: dict[str, int] | None = None
        self._owned: set[str] = set()

    def decision(self) -> Decision:
        state = Lifecycle(
            members=self.members,
            groups=self.groups,
            group_members=self.group_members,
            records=self.records,
            pending=self.pending,
            next_token=self.next_token,
        )
        return Decision(state, tuple(self.commands), tuple(self.events))

    # Copy each mapping on its first write in this step: a step costs O(servers) at worst and
    # the previous Lifecycle stays intact.

    def _first_write(self, which: str) -> bool:
        first = which not in self._owned
        self._owned.add(which)
        return first

    def _w_records(self) -> dict[str, ServerRecord]:
        if self._first_write("records"):
            self.records = dict(self.records)
        assert isinstance(self.records, dict)
        return self.records

    def _w_pending(self) -> dict[int, _Pending]:
        if self._first_write("pending"):
            self.pending = dict(self.pending)
        assert isinstance(self.pending, dict)
        return self.pending

    def _w_members(self) -> tuple[dict[str, Member], dict[str, tuple[str, ...]]]:
        if self._first_write("members"):
            self.members = dict(self.members)
            self.group_members = dict(self.group_members)
        self._order = None
        assert isinstance(self.members, dict) and isinstance(self.group_members, dict)
        return self.members, self.group_members

    def state(self, server: str) -> ServerState:
        return self.records[server].state

    def order(self, server: str) -> int:
        """Position in declared order (dicts keep insertion order; adds go to the end)."""
        if self._order is None:
            self._order = {name: i for i, name in enumerate(self.members)}
        return self._order[server]

    def move(
        self,
        server: str,
        new: ServerState | None,
        reason: str,
        *,
        attempt: int = 0,
        delay: float | None = None,
        cause: str | None = None,
        changes: Mapping[str, object] | None = None,
    ) -> None:
        """Change ``server``'s state, checked against the table, and record the event.

        ``attempt``, ``delay`` and ``cause`` go on the event; ``changes`` update the record.
        """
        old_rec = self.records.get(server)
        old = None if old_rec is None else old_rec.state
        if new not in TRANSITIONS[old] or reason not in EDGES[(old, new)]:
            raise AssertionError(f"illegal transition {old} -> {new} ({reason}) for {server!r}")
        self.events.append(LifecycleEvent(server, old, new, reason, self.at, attempt, delay, cause))
        records = self._w_records()
        if new is None:
            del records[server]
            return
        if old_rec is None:
            old_rec = ServerRecord(new, self.at, reason)
        fields: dict[str, object] = {
            "state": new,
            "since": self.at,
            "reason": reason,
            "wakeable": new is STOPPED and reason in WAKEABLE_REASONS,
            "active_since": None,
            "token": None,
        }
        if old is ACTIVE and self._up_long_enough(server, old_rec):
            fields["attempt"] = 0
        if cause is not None:
            fields["last_cause"] = cause
        fields.update(changes or {})
        records[server] = attrs.evolve(old_rec, **fields)  # type: ignore[arg-type]

    def _up_long_enough(self, server: str, rec: ServerRecord) -> bool:
        return (
            rec.state is ACTIVE
            and rec.active_since is not None
            and self.at - rec.active_since >= self.members[server].policy.reset_after
        )

    def set_token(self, server: str, token: int) -> None:
        records = self._w_records()
        records[server] = attrs.evolve(records[server], token=token)

    def new_token(self) -> int:
        token = self.next_token
        self.next_token += 1
        return token

    def stop_running(self, servers: Iterable[str], reason: str) -> None:
        """``StopServer`` for each running server among ``servers``, in reverse declared order."""
        for s in sorted(servers, key=self.order, reverse=True):
            if self.state(s) in _RUNNING:
                self.commands.append(StopServer(s, reason))

    def leave_pending(self, servers: Iterable[str]) -> None:
        """Take FAILED servers off their timers; cancel, or re-arm, the timers they leave."""
        by_token: dict[int, set[str]] = {}
        for s in servers:
            token = self.records[s].token
            if token is not None:
                by_token.setdefault(token, set()).add(s)
        for token, leaving in by_token.items():
            pending = self._w_pending()
            old = pending.pop(token)
            rest = tuple(s for s in old.members if s not in leaving)
            if rest and old.owner not in leaving:
                pending[token] = attrs.evolve(old, members=rest)
                continue
            self.commands.append(CancelRestart(old.owner, token))
            if rest:
                # The runtime forgets a removed owner's timers: arm one the rest can rely on.
                new_token = self.new_token()
                pending[new_token] = _Pending(rest[0], rest, old.due, old.attempt)
                for s in rest:
                    self.set_token(s, new_token)
                self.commands.append(
                    ScheduleRestart(rest[0], max(0.0, old.due - self.at), new_token)
                )

    def add(self, m: Member, reason: str) -> None:
        members, group_members = self._w_members()
        members[m.name] = m
        if m.group is not None:
            group_members[m.group] = (*group_members.get(m.group, ()), m.name)
        if m.start == "lazy":
            self.move(m.name, STOPPED, "lazy")
        else:
            self.move(m.name, STARTING, reason)
            self.commands.append(StartServer(m.name))

    def remove(self, server: str) -> None:
        self.stop_running([server], "removed")
        self.leave_pending([server])
        self.move(server, None, "removed")
        members, group_members = self._w_members()
        group = members.pop(server).group
        if group is not None:
            group_members[group] = tuple(s for s in group_members[group] if s != server)
        self.commands.append(Forget(server))

    def drop(
        self,
        servers: Iterable[str],
        reason: str,
        causes: Mapping[str, str],
        *,
        gone: str | None = None,
        changes: Mapping[str, Mapping[str, object]] | None = None,
    ) -> None:
        """Move ``servers`` to DROPPED: stop the running, release the waiting, escalate.

        ``gone`` names a server whose worker has already ended and needs no stopping.
        """
        victims = sorted(servers, key=self.order)
        self.stop_running([s for s in victims if s != gone], reason)
        self.leave_pending(victims)
        escalations: list[tuple[str, str]] = []
        for s in victims:
            cause = causes.get(s)
            self.move(s, DROPPED, reason, cause=cause, changes=(changes or {}).get(s))
            if self.members[s].required:
                escalations.append((s, cause or f"required server {s!r} was dropped"))
        for s, text in escalations:
            self.commands.append(Escalate(s, text))
            self.events.append(
                LifecycleEvent(
                    s, DROPPED, DROPPED, "escalated", self.at, cause=text, kind="escalation"
                )
            )

    def command(self, inp: RestartNow | Drop | Stop | Revive | Wake | Remove) -> None:
        server = inp.server
        match inp:
            case RestartNow():
                self.stop_running([server], "restart")
                self.leave_pending([server])
                self.move(server, STARTING, "restart")
                self.commands.append(StartServer(server))
            case Drop():
                self.drop([server], "dropped", {})
            case Stop():
                self.stop_running([server], "stopped")
                self.leave_pending([server])
                self.move(server, STOPPED, "stopped")
            case Revive():
                fresh = {"attempt": 0, "restarts": 0, "restart_times": (), "failed_starts": 0}
                self.move(server, STARTING, "revived", changes=fresh)
                self.commands.append(StartServer(server))
            case Wake():
                self.move(server, STARTING, "wake")
                self.commands.append(StartServer(server))
            case Remove():
                self.remove(server)

    def reconfigure(self, inp: Reconfigure) -> None:
        """Apply a validated :class:`Reconfigure`; see the module documentation."""
        kept = {m.name for m in inp.members}
        gone = [s for s in self.members if s not in kept]
        restart = inp.restart
        # A temporary server is never restarted, so one made temporary stops waiting for it.
        retired = [
            m.name
            for m in inp.members
            if m.name in self.records
            and m.name not in restart
            and self.state(m.name) is FAILED
            and m.policy.restart == "temporary"
        ]
        for s in sorted([*gone, *restart], key=self.order, reverse=True):
            if self.state(s) in _RUNNING:
                self.commands.append(StopServer(s, "reconfigured" if s in restart else "removed"))
        self.leave_pending([*gone, *retired, *(s for s in restart if self.state(s) is FAILED)])
        for s in gone:
            self.move(s, None, "removed")
            self.commands.append(Forget(s))
        members, group_members = self._w_members()
        members.clear()
        group_members.clear()
        self.groups = MappingProxyType(dict(inp.groups))
        fresh = {"attempt": 0, "restarts": 0, "restart_times": (), "failed_starts": 0}
        for m in inp.members:
            if m.name not in self.records:
                self.add(m, "added")
                continue
            members[m.name] = m
            if m.group is not None:
                group_members[m.group] = (*group_members.get(m.group, ()), m.name)
            if m.name in retired:
                self.move(m.name, STOPPED, "reconfigured")
            if m.name not in restart:
                continue
            if self.state(m.name) is STOPPED:
                records = self._w_records()
                records[m.name] = attrs.evolve(records[m.name], **fresh)  # type: ignore[arg-type]
            else:
                self.move(m.name, STARTING, "reconfigured", changes=fresh)
                self.commands.append(StartServer(m.name))

    def _recent(self, server: str) -> tuple[float, ...]:
        within = self.members[server].policy.within
        return tuple(t for t in self.records[server].restart_times if self.at - t <= within)

    def exceeds(self, server: str) -> bool:
        """Whether one more restart now would exceed ``server``'s intensity."""
        return len(self._recent(server)) + 1 > self.members[server].policy.max_restarts

    def counted(self, server: str) -> dict[str, object]:
        """Record changes that count one restart of ``server`` now."""
        restarts = self.records[server].restarts + 1
        return {"restarts": restarts, "restart_times": (*self._recent(server), self.at)}

    def siblings(self, server: str, strategy: Strategy) -> tuple[str, ...]:
        """The live members a failure of ``server`` takes down, in declared order."""
        group = self.members[server].group
        if group is None or strategy == "one_for_one":
            return ()
        everyone = self.group_members[group]
        if strategy == "rest_for_one":
            everyone = everyone[everyone.index(server) :]
        return tuple(s for s in everyone if s != server and self.state(s) in _LIVE)

    def fail(
        self, server: str, kind: ExitKind, cause: str, reason: str, draw: Callable[[], float]
    ) -> None:
        """``server``'s worker ended on its own: restart it (with its group), stop or drop it."""
        rec = self.records[server]
        m = self.members[server]
        streak = rec.failed_starts + (1 if rec.state is STARTING else 0)
        if not _wants_restart(m.policy.restart, kind):
            self.move(server, STOPPED, reason, cause=cause, changes={"failed_starts": streak})
            return
        strategy: Strategy = "one_for_one" if m.group is None else self.groups[m.group]
        siblings = self.siblings(server, strategy)
        temporary = [s for s in siblings if self.members[s].policy.restart == "temporary"]
        taken_down = [s for s in siblings if self.state(s) in _RUNNING and s not in temporary]
        waiting = [s for s in siblings if self.state(s) is FAILED]

        if streak > m.policy.max_restarts or any(self.exceeds(s) for s in (server, *taken_down)):
            victims: tuple[str, ...] = (server,)
            causes = {server: cause}
            if m.group is not None and strategy != "one_for_one":
                victims = tuple(
                    s for s in self.group_members[m.group] if s == server or self.state(s) in _LIVE
                )
                gave_up = f"group {m.group!r} gave up after {server!r} failed: {cause}"
                causes = {s: cause if s == server else gave_up for s in victims}
            self.drop(
                victims,
                "intensity",
                causes,
                gone=server,
                changes={server: {"failed_starts": streak}},
            )
            return

        attempt = 1 if self._up_long_enough(server, rec) else rec.attempt + 1
        delay = m.policy.backoff.delay(attempt, draw())
        token = self.new_token()
        self.stop_running([*taken_down, *temporary], "group_restart")
        self.leave_pending(waiting)
        self.move(
            server,
            FAILED,
            reason,
            attempt=attempt,
            delay=delay,
            cause=cause,
            changes={
                "attempt": attempt,
                "failed_starts": streak,
                "token": token,
                **self.counted(server),
            },
        )
        sibling_cause = f"{server!r} failed: {cause}"
        for s in siblings:
            if s in temporary:
                self.move(s, STOPPED, "group_restart", cause=sibling_cause)
            elif s in taken_down:
                changes = {"token": token, **self.counted(s)}
                self.move(
                    s,
                    FAILED,
                    "group_restart",
                    attempt=attempt,
                    delay=delay,
                    cause=sibling_cause,
                    changes=changes,
                )
            else:
                self.set_token(s, token)
        restarting = sorted({server, *taken_down, *waiting}, key=self.order)
        self._w_pending()[token] = _Pending(server, tuple(restarting), self.at + delay, attempt)
        self.commands.append(ScheduleRestart(server, delay, token))

    def fire(self, token: int) -> None:
        """The backoff elapsed: everyone waiting on ``token`` starts, in declared order."""
        pending = self._w_pending().pop(token)
        # Sorted again: a reconfiguration may have reordered the members since it was armed.
        for s in sorted(pending.members, key=self.order):
            self.move(s, STARTING, "backoff", attempt=pending.attempt)
            self.commands.append(StartServer(s))
