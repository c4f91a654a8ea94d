"""Turning exceptions into one-line messages and exit codes."""

from __future__ import annotations

import trio

from mcpvisor.specs import ConfigError, MCPVisorError
from mcpvisor.specs import UsageError as CallerMistake


class UsageError(Exception):
    """The command line asked for something impossible (exit code 2)."""


def leaf(exc: BaseException) -> BaseException:
    """The one real error inside nested exception groups, or the group if there are several."""
    found: list[BaseException] = []

    def walk(e: BaseException) -> None:
        if isinstance(e, BaseExceptionGroup):
            for inner in e.exceptions:
                walk(inner)
        elif not isinstance(e, trio.Cancelled):
            found.append(e)

    walk(exc)
    return found[0] if len(found) == 1 else exc


def _usage_types() -> tuple[type[BaseException], ...]:
    import mcpvisor as mv

    return (UsageError, CallerMistake, ConfigError, mv.UnknownServerError, mv.UnknownToolError)


def exit_code_for(exc: BaseException) -> int | None:
    """2 for usage and config mistakes, 1 for expected runtime failures, None if unexpected."""
    from mcp.shared.exceptions import MCPError

    e = leaf(exc)
    if isinstance(e, _usage_types()):
        return 2
    if isinstance(e, MCPVisorError | MCPError | OSError):
        return 1
    return None


def message_for(exc: BaseException, *, hint: bool = True) -> str:
    """A one-line message for ``exc``; unexpected errors name their type."""
    e = leaf(exc)
    if isinstance(e, ConfigError):
        return "bad config: " + "; ".join(str(p) for p in e.problems)
    text = " ".join(str(e).split())
    if exit_code_for(e) is not None:
        return text or type(e).__name__
    message = f"unexpected {type(e).__name__}: {text}" if text else f"unexpected {type(e).__name__}"
    return message + (" (run with --debug for the traceback)" if hint else "")
