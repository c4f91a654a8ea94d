"""What every exporter derives from a request or an event, so traces, OTel metrics and
Prometheus agree on names and never label by arguments."""

from __future__ import annotations

from collections.abc import Mapping

from mcp.shared.exceptions import MCPError

from mcpvisor.supervisor.hooks import RequestCall
from mcpvisor.workers.catalog import Catalog

ISOLATED_MARK = "~"
"""Isolated sessions are named ``server~N``; configured names cannot contain ``~``."""

ABNORMAL_REASONS = frozenset({"crashed", "start_failed", "group_restart", "intensity"})
"""Reasons for leaving STARTING or ACTIVE that mean something went wrong."""

OTHER_TOOL = "_OTHER"
"""The tool label of a name the server's catalog does not list (a caller's invention)."""


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

    A JSON-RPC error is its code (as the SDK's own span reports it); a timeout is
    ``timeout``; other failures are the exception's class name. A caller's own cancellation
    is not an error of the request.
    """
    outcome = call.outcome
    if outcome is None or outcome in ("ok", "cancelled"):
        return None
    if isinstance(call.error, MCPError):
        return str(call.error.code)
    if outcome == "timeout":
        return "timeout"
    if call.error is not None:
        return type(call.error).__qualname__
    return outcome


class ToolNames:
    """The tool names each server's catalog lists, to label by tool without trusting callers.

    Fed from ``catalog_changed``; :meth:`label` maps a name outside the catalog to
    :data:`OTHER_TOOL`, so a caller inventing names cannot grow a metric's series.
    """

    def __init__(self) -> None:
        self._known: dict[str, frozenset[str]] = {}

    def update(self, server: str, catalog: Catalog) -> None:
        """Remember ``server``'s tools as ``catalog`` lists them."""
        self._known[configured_name(server)] = frozenset(t.name for t in catalog.tools)

    def label(self, call: RequestCall) -> str:
        """The tool label of ``call``: its tool if the catalog lists it, else ``_OTHER``;
        empty for operations that name no tool."""
        if call.op != "call_tool" or call.target is None:
            return ""
        known: Mapping[str, frozenset[str]] = self._known
        if call.target in known.get(configured_name(call.server), frozenset()):
            return call.target
        return OTHER_TOOL
