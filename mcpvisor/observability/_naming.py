"""What every exporter derives from a request or an event, so traces, OTel metrics and
Prometheus agree on names and never label by arguments."""

from __future__ import annotations

from collections.abc import Mapping

from mcp.shared.exceptions import MCPError

from mcpvisor.supervisor.hooks import RequestCall
from mcpvisor.supervisor.lifecycle import LifecycleEvent
from mcpvisor.workers.catalog import Catalog

ISOLATED_MARK = "~"
"""Isolated sessions are named ``server~N``; configured names cannot contain ``~``."""

ABNORMAL_REASONS = frozenset({"crashed", "start_failed", "group_restart", "intensity"})
"""Reasons for leaving STARTING or ACTIVE that mean something went wrong."""

OTHER = "_OTHER"
"""The label of a name the supervisor does not know: a caller's invention."""


def configured_name(server: str) -> str:
    """The configured server an isolated session ``server~N`` belongs to; else ``server``.

    Isolated sessions come and go with their callers, so exporters label them by the server
    they copy, keeping the label set bounded.
    """
    return server.partition(ISOLATED_MARK)[0]


def is_isolated(server: str) -> bool:
    """Whether ``server`` names an isolated session rather than a configured server."""
    return ISOLATED_MARK in server


def error_type(call: RequestCall) -> str | None:
    """The OTel ``error.type`` of a finished request, or None when it did not fail.

    A JSON-RPC error is its code (as the SDK's own span reports it); a tool result with
    ``is_error`` set is ``tool_error`` (the MCP semantic conventions' name, which the SDK's
    server span uses too); a timeout is ``timeout``; other failures are the exception's class
    name. A caller's own cancellation is not an error of the request.
    """
    outcome = call.outcome
    if outcome == "ok":
        return "tool_error" if call.tool_error else None
    if outcome is None or outcome == "cancelled":
        return None
    if isinstance(call.error, MCPError):
        return str(call.error.code)
    if outcome == "timeout":
        return "timeout"
    if call.error is not None:
        return type(call.error).__qualname__
    return outcome


class Vocabulary:
    """The names exporters may use as metric labels, learnt from the supervisor itself.

    A request's server and operation names come from its caller, and a caller may invent
    them (an unknown server, a misspelt operation, a made-up tool). Metrics label only
    servers that have appeared in a lifecycle event, operations the runtime knows (it sets
    ``call.method`` for those) and tools a server's catalog lists; anything else is
    :data:`OTHER`, so no caller can grow a metric's series.
    """

    def __init__(self) -> None:
        self._servers: set[str] = set()
        self._tools: dict[str, frozenset[str]] = {}

    def saw(self, event: LifecycleEvent) -> None:
        """Learn a server's name from its first appearance."""
        if event.new is not None:
            self._servers.add(configured_name(event.server))

    def learn_tools(self, server: str, catalog: Catalog) -> None:
        """Remember ``server``'s tools as ``catalog`` lists them."""
        self._tools[configured_name(server)] = frozenset(t.name for t in catalog.tools)

    def server(self, call: RequestCall) -> str:
        """The server label: its configured name, or ``_OTHER`` for one never supervised."""
        name = configured_name(call.server)
        return name if name in self._servers else OTHER

    @staticmethod
    def op(call: RequestCall) -> str:
        """The operation label: its name, or ``_OTHER`` for an operation that does not exist."""
        return call.op if call.method else OTHER

    def tool(self, call: RequestCall) -> str:
        """The tool label of ``call``: its tool if the catalog lists it, else ``_OTHER``;
        empty for operations that name no tool."""
        if call.op != "call_tool" or call.target is None:
            return ""
        known: Mapping[str, frozenset[str]] = self._tools
        if call.target in known.get(configured_name(call.server), frozenset()):
            return call.target
        return OTHER
