"""What to supervise: frozen, validated data, and loading it from config files."""

from mcpvisor.specs.errors import ConfigError, MCPVisorError, Problem, UsageError
from mcpvisor.specs.policy import Backoff, RestartPolicy, RestartType, Strategy, Timeouts
from mcpvisor.specs.servers import (
    NAME_SEPARATOR,
    HttpSpec,
    InProcessSpec,
    ServerSpec,
    SseSpec,
    StartMode,
    StdioSpec,
    SupervisorSpec,
    qualify,
    split_qualified,
)

__all__ = [
    "NAME_SEPARATOR",
    "Backoff",
    "ConfigError",
    "HttpSpec",
    "InProcessSpec",
    "MCPVisorError",
    "Problem",
    "RestartPolicy",
    "RestartType",
    "ServerSpec",
    "SseSpec",
    "StartMode",
    "StdioSpec",
    "Strategy",
    "SupervisorSpec",
    "Timeouts",
    "UsageError",
    "qualify",
    "split_qualified",
]
