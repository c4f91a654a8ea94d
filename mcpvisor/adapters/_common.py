"""What every adapter shares: which servers serve tools now, and errors as tool results."""

from __future__ import annotations

from mcp_types import CallToolResult, TextContent

from mcpvisor.specs import MCPVisorError
from mcpvisor.supervisor import ServerState, ServerStatus

MODEL_VISIBLE_ERRORS: tuple[type[Exception], ...] = (MCPVisorError,)
"""What a tool call turns into an ``is_error`` result for the model instead of raising: the
server is down, restarting too slowly, was interrupted by a crash, or the name is wrong.
The next turn may well succeed, since mcpvisor restarts the server meanwhile."""


def offers_tools(status: ServerStatus | None) -> bool:
    """Whether a model should see ``status``'s tools: it serves, or it is coming back.

    ACTIVE, STARTING and FAILED (a restart is pending: a call waits for it within its
    deadline) and STOPPED-but-wakeable (lazy or idle: a call starts it). Not DROPPED, and
    not stopped on purpose.
    """
    if status is None:
        return False
    if status.state is ServerState.STOPPED:
        return status.wakeable
    return status.state is not ServerState.DROPPED


def error_result(error: Exception) -> CallToolResult:
    """A tool result carrying ``error``'s message (safe to show: mcpvisor redacts secrets)."""
    return CallToolResult(content=[TextContent(type="text", text=str(error))], is_error=True)
