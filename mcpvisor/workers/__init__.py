"""One server's session, owned by one Trio task that serves requests from a memory channel."""

from mcpvisor.workers.errors import (
    RequestInterruptedError,
    RequestTimeoutError,
    StartError,
    StartErrorKind,
)
from mcpvisor.workers.requests import (
    OPERATIONS,
    Envelope,
    Operation,
    ProgressCallback,
    Reply,
    Request,
)
from mcpvisor.workers.worker import (
    ExitKind,
    ProtocolMode,
    Ready,
    WorkerExit,
    WorkerHooks,
    run_worker,
)

__all__ = [
    "OPERATIONS",
    "Envelope",
    "ExitKind",
    "Operation",
    "ProgressCallback",
    "ProtocolMode",
    "Ready",
    "Reply",
    "Request",
    "RequestInterruptedError",
    "RequestTimeoutError",
    "StartError",
    "StartErrorKind",
    "WorkerExit",
    "WorkerHooks",
    "run_worker",
]
