"""The library's logger: the host's structlog setup if it has one, stdlib logging if not.

A library must not configure logging, yet structlog's unconfigured default prints every
level to stdout, which would flood a host that never asked for it (and corrupt the protocol
stream of a host that is itself a stdio MCP server). So until the host configures structlog,
events go to the stdlib logger ``mcpvisor``, where the host's logging config (or Python's
default: warnings and above on stderr) decides what shows.
"""

from __future__ import annotations

import functools
import logging
from typing import Any

import structlog

_stdlib = structlog.wrap_logger(
    logging.getLogger("mcpvisor"),
    processors=[
        structlog.stdlib.filter_by_level,
        structlog.processors.format_exc_info,
        structlog.processors.KeyValueRenderer(key_order=["event"], sort_keys=True),
    ],
    wrapper_class=structlog.stdlib.BoundLogger,
)


class _LibraryLogger:
    """Picks the backend at each call, so a host may configure structlog after import."""

    def __getattr__(self, name: str) -> Any:
        backend = structlog.get_logger("mcpvisor") if structlog.is_configured() else _stdlib
        return getattr(backend, name)


def library_logger() -> Any:
    """The logger every mcpvisor module logs through (named ``mcpvisor``)."""
    return _LibraryLogger()


class _ServerLogger:
    """The library logger with ``server=`` on every line: what ``bind(server=...)`` gives,
    without a bound logger and its context dict kept per worker (~400 bytes each), and with
    the backend picked at each call as :class:`_LibraryLogger` does."""

    __slots__ = ("_server",)

    def __init__(self, server: str) -> None:
        self._server = server

    def __getattr__(self, name: str) -> Any:
        return functools.partial(getattr(_library, name), server=self._server)


_library = _LibraryLogger()


def server_logger(server: str) -> Any:
    """The library logger for lines about ``server``: each carries ``server=server``."""
    return _ServerLogger(server)
