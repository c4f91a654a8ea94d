"""One server's session, owned by one Trio task that serves operations from a memory channel."""

from mcpvisor.workers.catalog import CATALOG_PARTS, EMPTY_CATALOG, Catalog, CatalogPart
from mcpvisor.workers.errors import (
    RequestInterruptedError,
    RequestTimeoutError,
    StartError,
    StartErrorKind,
)
from mcpvisor.workers.operations import (
    OPERATIONS,
    CallTool,
    Complete,
    GetPrompt,
    ListPrompts,
    ListResources,
    ListResourceTemplates,
    ListTools,
    Operation,
    Probe,
    ProgressCallback,
    ReadResource,
    SetLoggingLevel,
    SubscribeResource,
    UnsubscribeResource,
)
from mcpvisor.workers.reports import ExitKind, LossKind, Ready, WorkerExit, WorkerHooks
from mcpvisor.workers.requests import Envelope, Reply
from mcpvisor.workers.worker import run_worker

__all__ = [
    "CATALOG_PARTS",
    "EMPTY_CATALOG",
    "OPERATIONS",
    "CallTool",
    "Catalog",
    "CatalogPart",
    "Complete",
    "Envelope",
    "ExitKind",
    "GetPrompt",
    "ListPrompts",
    "ListResourceTemplates",
    "ListResources",
    "ListTools",
    "LossKind",
    "Operation",
    "Probe",
    "ProgressCallback",
    "ReadResource",
    "Ready",
    "Reply",
    "RequestInterruptedError",
    "RequestTimeoutError",
    "SetLoggingLevel",
    "StartError",
    "StartErrorKind",
    "SubscribeResource",
    "UnsubscribeResource",
    "WorkerExit",
    "WorkerHooks",
    "run_worker",
]
