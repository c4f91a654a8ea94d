"""Logging for the command line: the library configures nothing, so the CLI does it here.

structlog (the ``mcpvisor`` logger) and the standard library's logging (which the MCP SDK
uses) both render through the same renderer: a coloured console format when stderr is a
terminal, one JSON object per line otherwise. Everything goes to stderr, so stdout stays
clean for results and JSON-lines events.
"""

from __future__ import annotations

import logging
import sys
from typing import Any, TextIO

import structlog

LEVELS = ("debug", "info", "warning", "error", "critical")


class _StderrLogger:
    """Writes to whatever ``sys.stderr`` is *now*, so rich's Live display can redirect it."""

    def msg(self, message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    log = debug = info = warning = warn = error = critical = exception = fatal = msg


def _stderr_logger(*_args: Any) -> _StderrLogger:
    return _StderrLogger()


class _StderrHandler(logging.StreamHandler[TextIO]):
    """A handler bound to the current ``sys.stderr`` rather than the one seen at import."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, _value: TextIO) -> None:
        pass


def configure_logging(level: str = "warning", *, json_output: bool | None = None) -> None:
    """Route structlog and stdlib logging at ``level`` and above to stderr.

    ``json_output=None`` picks JSON when stderr is not a terminal.
    """
    numeric = logging.getLevelNamesMapping()[level.upper()]
    if json_output is None:
        json_output = not sys.stderr.isatty()
    renderer: structlog.typing.Processor
    if json_output:
        renderer = structlog.processors.JSONRenderer()
    else:
        renderer = structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    shared: list[structlog.typing.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    tail: list[structlog.typing.Processor] = (
        [structlog.processors.format_exc_info, renderer] if json_output else [renderer]
    )
    structlog.configure(
        processors=[*shared, *tail],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=_stderr_logger,
        cache_logger_on_first_use=False,
    )

    handler = _StderrHandler()
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[*shared, structlog.stdlib.add_logger_name],
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *tail],
        )
    )
    root = logging.getLogger()
    for old in list(root.handlers):
        if isinstance(old, _StderrHandler):
            root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(numeric)
