"""mcpvisor: supervise MCP server connections the way OTP supervises processes.

Embed it in a Trio service::

    import mcpvisor as mv

    async with mv.open_supervisor(mv.load_config("mcp.json")) as client:
        result = await client.call_tool("files__read_file", {"path": "/etc/hosts"})

Everything public is re-exported here; submodules are private.
"""

from importlib.metadata import version as _version

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
)
from mcpvisor.specs.config import dump_config, load_config
from mcpvisor.supervisor import (
    CommandRefusedError,
    EventsLost,
    IsolatedSession,
    LifecycleEvent,
    ReconfigureReport,
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

__version__ = _version("mcpvisor")

__all__ = [
    "Backoff",
    "CommandRefusedError",
    "ConfigError",
    "EventsLost",
    "HttpSpec",
    "InProcessSpec",
    "IsolatedSession",
    "LifecycleEvent",
    "MCPVisorError",
    "Problem",
    "ReconfigureReport",
    "RequestInterruptedError",
    "RequestTimeoutError",
    "RequiredServerError",
    "RestartPolicy",
    "ServerSpec",
    "ServerState",
    "ServerStatus",
    "ServerUnavailableError",
    "SseSpec",
    "StartError",
    "StdioSpec",
    "Subscription",
    "Supervisor",
    "SupervisorClient",
    "SupervisorSpec",
    "SupervisorStatus",
    "Timeouts",
    "ToolEntry",
    "UnknownServerError",
    "UnknownToolError",
    "__version__",
    "dump_config",
    "load_config",
    "open_supervisor",
]
