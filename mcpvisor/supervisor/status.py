"""A point-in-time snapshot of every server, for a host's health endpoint."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import attrs

from mcpvisor.supervisor.lifecycle import ServerState

Health = Literal["healthy", "degraded", "unavailable"]


@attrs.frozen
class ServerStatus:
    """One server as the supervisor saw it at its last decision.

    ``pid`` is the stdio child's pid while ACTIVE, else None: a lost session stops showing its
    pid (and ACTIVE) the moment the loss is known, not when its teardown ends. ``tools`` is
    the length of the server's current catalog's tool list. ``since`` is the trio clock time
    of the last state change; ``restarts`` counts automatic
    restarts (crashes, failed starts, group restarts) since it was added or last revived.
    ``last_error`` is the most recent failure cause, kept after recovery for diagnosis.
    ``isolated_of`` names the server an isolated session belongs to.
    """

    name: str
    state: ServerState
    since: float
    restarts: int
    last_error: str | None
    required: bool
    group: str | None
    transport: str
    pid: int | None = None
    tools: int = 0
    wakeable: bool = False
    isolated_of: str | None = None

    def to_dict(self, now: float | None = None) -> dict[str, Any]:
        """JSON-ready: ``state``, ``since``, ``restarts``, ``last_error``, ``required``,
        ``group``, ``transport``, ``pid`` and ``tools`` always; ``isolated_of`` for an isolated
        session; ``in_state_for`` (seconds since ``since``) when ``now`` is given."""
        out: dict[str, Any] = {
            "state": self.state.value,
            "since": self.since,
            "restarts": self.restarts,
            "last_error": self.last_error,
            "required": self.required,
            "group": self.group,
            "transport": self.transport,
            "pid": self.pid,
            "tools": self.tools,
        }
        if self.isolated_of is not None:
            out["isolated_of"] = self.isolated_of
        if now is not None:
            out["in_state_for"] = max(0.0, now - self.since)
        return out


@attrs.frozen
class SupervisorStatus:
    """Every server's :class:`ServerStatus`, keyed by name, taken at trio time ``at``.

    ``health`` is ``unavailable`` when a required server is not serving (or no server is),
    ``degraded`` when any server is starting, failed or dropped, else ``healthy``. Servers
    stopped on purpose, and lazy or idle ones that wake on demand, do not degrade health.
    Isolated sessions appear in ``servers`` but not in the health or the state lists.
    """

    servers: Mapping[str, ServerStatus]
    at: float

    def _configured(self) -> list[ServerStatus]:
        """Servers of the spec; isolated sessions come and go, and do not count for health."""
        return [s for s in self.servers.values() if s.isolated_of is None]

    def _by_state(self, state: ServerState) -> list[str]:
        return [s.name for s in self._configured() if s.state is state]

    @property
    def active(self) -> list[str]:
        """Names of ACTIVE servers."""
        return self._by_state(ServerState.ACTIVE)

    @property
    def failed(self) -> list[str]:
        """Names of FAILED servers (a restart is pending)."""
        return self._by_state(ServerState.FAILED)

    @property
    def dropped(self) -> list[str]:
        """Names of DROPPED servers (given up until revived)."""
        return self._by_state(ServerState.DROPPED)

    @property
    def health(self) -> Health:
        """See the class docstring."""
        configured = self._configured()
        serving = [
            s
            for s in configured
            if s.state is ServerState.ACTIVE or (s.state is ServerState.STOPPED and s.wakeable)
        ]
        required_down = any(s.required and s not in serving for s in configured)
        if required_down or (configured and not serving):
            return "unavailable"
        troubled = (ServerState.STARTING, ServerState.FAILED, ServerState.DROPPED)
        if any(s.state in troubled for s in configured):
            return "degraded"
        return "healthy"

    def to_dict(self) -> dict[str, Any]:
        """``{"status", "active", "failed", "dropped", "servers": {name: {...}}}``, JSON-ready."""
        return {
            "status": self.health,
            "active": self.active,
            "failed": self.failed,
            "dropped": self.dropped,
            "servers": {name: s.to_dict(self.at) for name, s in self.servers.items()},
        }
