"""The policy core, the runtime that carries it out, the client handle and the events."""

from mcpvisor.supervisor.client import IsolatedSession, SupervisorClient, ToolEntry
from mcpvisor.supervisor.errors import (
    RequiredServerError,
    ServerUnavailableError,
    UnknownServerError,
    UnknownToolError,
)
from mcpvisor.supervisor.events import EventsLost, Subscription
from mcpvisor.supervisor.hooks import Hooks, RequestCall, RequestOutcome
from mcpvisor.supervisor.lifecycle import CommandRefusedError, LifecycleEvent, ServerState
from mcpvisor.supervisor.reconfigure import ReconfigureReport
from mcpvisor.supervisor.runtime import Supervisor, open_supervisor
from mcpvisor.supervisor.status import ServerStatus, SupervisorStatus

__all__ = [
    "CommandRefusedError",
    "EventsLost",
    "Hooks",
    "IsolatedSession",
    "LifecycleEvent",
    "ReconfigureReport",
    "RequestCall",
    "RequestOutcome",
    "RequiredServerError",
    "ServerState",
    "ServerStatus",
    "ServerUnavailableError",
    "Subscription",
    "Supervisor",
    "SupervisorClient",
    "SupervisorStatus",
    "ToolEntry",
    "UnknownServerError",
    "UnknownToolError",
    "open_supervisor",
]
