"""mcpvisor: supervise MCP server connections the way OTP supervises processes.

Embed it in a Trio service::

    import mcpvisor as mv

    async with mv.open_supervisor(mv.load_config("mcp.json")) as client:
        result = await client.call_tool("files__read_file", {"path": "/etc/hosts"})

Everything public is re-exported here; submodules are private.
"""

from importlib.metadata import version as _version

from mcpvisor.observability import OpenTelemetryHooks
from mcpvisor.specs import (
    Backoff,
    ConfigError,
    HttpSpec,
    InProcessSpec,
    MCPVisorError,
    Problem,
    RestartPolicy,
    ServerSpec,
    SseSpec,
    StdioSpec,
    SupervisorSpec,
    Timeouts,
    UsageError,
)
from mcpvisor.specs.config import dump_config, load_config
from mcpvisor.specs.handlers import ClientHandlers, HandlerContext, ServerLog
from mcpvisor.supervisor import (
    CommandRefusedError,
    EventsLost,
    Hooks,
    IsolatedSession,
    LifecycleEvent,
    ReconfigureReport,
    RequestCall,
    RequestOutcome,
    RequiredServerError,
    ServerState,
    ServerStatus,
    ServerUnavailableError,
    Subscription,
    Supervisor,
    SupervisorClient,
    SupervisorStatus,
    ToolEntry,
    UnknownServerError,
    UnknownToolError,
    open_supervisor,
)
from mcpvisor.workers import RequestInterruptedError, RequestTimeoutError, StartError
from mcpvisor.workers.callbacks import ResourceUpdated
from mcpvisor.workers.catalog import EMPTY_CATALOG, Catalog, CatalogPart
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
    ReadResource,
    SetLoggingLevel,
    SubscribeResource,
    UnsubscribeResource,
)

__version__ = _version("mcpvisor")

__all__ = [
    "EMPTY_CATALOG",
    "OPERATIONS",
    "Backoff",
    "CallTool",
    "Catalog",
    "CatalogPart",
    "ClientHandlers",
    "CommandRefusedError",
    "Complete",
    "ConfigError",
    "EventsLost",
    "GetPrompt",
    "HandlerContext",
    "Hooks",
    "HttpSpec",
    "InProcessSpec",
    "IsolatedSession",
    "LifecycleEvent",
    "ListPrompts",
    "ListResourceTemplates",
    "ListResources",
    "ListTools",
    "MCPVisorError",
    "OpenTelemetryHooks",
    "Operation",
    "Probe",
    "Problem",
    "ReadResource",
    "ReconfigureReport",
    "RequestCall",
    "RequestInterruptedError",
    "RequestOutcome",
    "RequestTimeoutError",
    "RequiredServerError",
    "ResourceUpdated",
    "RestartPolicy",
    "ServerLog",
    "ServerSpec",
    "ServerState",
    "ServerStatus",
    "ServerUnavailableError",
    "SetLoggingLevel",
    "SseSpec",
    "StartError",
    "StdioSpec",
    "SubscribeResource",
    "Subscription",
    "Supervisor",
    "SupervisorClient",
    "SupervisorSpec",
    "SupervisorStatus",
    "Timeouts",
    "ToolEntry",
    "UnknownServerError",
    "UnknownToolError",
    "UnsubscribeResource",
    "UsageError",
    "__version__",
    "dump_config",
    "load_config",
    "open_supervisor",
]
