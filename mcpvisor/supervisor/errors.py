"""Errors a host sees when it talks to supervised servers.

Each names the server and says why in a message that is safe to log and show.
"""

from __future__ import annotations

from difflib import get_close_matches
from typing import TYPE_CHECKING

from mcpvisor.specs import split_qualified
from mcpvisor.specs.errors import MCPVisorError

if TYPE_CHECKING:
    from collections.abc import Iterable

    from mcpvisor.supervisor.lifecycle import ServerState


def nearest(name: str, known: Iterable[str]) -> str | None:
    """The known name closest to ``name``; first, one qualified name for the bare name
    (``add`` for ``files__add``), which plain similarity ranks too far apart to offer."""
    names = list(known)
    for candidate in names:
        parts = split_qualified(candidate)
        if parts is not None and parts[1] == name:
            return candidate
    close = get_close_matches(name, names, n=1)
    return close[0] if close else None


class ServerUnavailableError(MCPVisorError):
    """The server is DROPPED or STOPPED (or being removed, or the supervisor is closing).

    A request fails with it at once if the server is already down for good, or as soon as the
    server it waits for is dropped, stopped or removed: it cannot succeed until someone
    revives or restarts the server.
    """

    def __init__(self, server: str, state: ServerState | None, cause: str | None = None) -> None:
        self.server = server
        self.state = state
        self.cause = cause
        where = f"is {state.value}" if state is not None else "is not available"
        message = f"server {server!r} {where}"
        if cause:
            message += f": {cause}"
        super().__init__(message)


class UnknownServerError(MCPVisorError, LookupError):
    """No server of that name is supervised; ``suggestion`` is the nearest name, if any."""

    def __init__(self, server: str, known: Iterable[str] = ()) -> None:
        self.server = server
        self.suggestion = nearest(server, known)
        message = f"unknown server {server!r}"
        if self.suggestion:
            message += f"; did you mean {self.suggestion!r}?"
        super().__init__(message)

    def __str__(self) -> str:
        return str(self.args[0])


class UnknownToolError(MCPVisorError, LookupError):
    """The server is up but has no tool of that name; ``suggestion`` is the nearest one."""

    def __init__(self, server: str, tool: str, known: Iterable[str] = ()) -> None:
        self.server = server
        self.tool = tool
        self.suggestion = nearest(tool, known)
        message = f"server {server!r} has no tool {tool!r}"
        if self.suggestion:
            message += f"; did you mean {self.suggestion!r}?"
        super().__init__(message)

    def __str__(self) -> str:
        return str(self.args[0])


class RequiredServerError(MCPVisorError):
    """A ``required`` server could not be kept up within its restart budget.

    Raised out of ``open_supervisor`` (at startup or, as escalation, from the ``async with``
    block) after everything it started has been torn down.
    """

    def __init__(self, server: str, cause: str | None) -> None:
        self.server = server
        self.cause = cause
        message = f"required server {server!r} was dropped"
        # A drop with no cause of its own escalates with this very sentence as its text.
        if cause and cause != message:
            message += f": {cause}"
        super().__init__(message)
