"""Logging for the command line: the library configures nothing, so the CLI does it here.

structlog (the ``mcpvisor`` logger) and the standard library's logging (which the MCP SDK
uses) both render through the same renderer: a coloured console format when stderr is a
terminal, one JSON object per line otherwise. Everything goes to stderr, so stdout stays
clean for results and JSON-lines events.

Every line is redacted on its way out, whoever logged it: the secrets of each loaded config
(:func:`protect`) and the userinfo and query values of any URL. httpx's request lines and the
SDK's "Connecting to ... endpoint" lines name the server URL with its credentials. While a
live view is drawn, lines go to its event panel instead of scrolling above it
(:func:`route_logs`).
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TextIO

import structlog

from mcpvisor.specs import ServerSpec, SupervisorSpec
from mcpvisor.specs.secrets import Redactor, redact_urls

LEVELS = ("debug", "info", "warning", "error", "critical")


_redactors: list[Redactor] = []
_sink: list[Callable[[str], None]] = []


def protect(spec: ServerSpec | SupervisorSpec) -> None:
    """Mask ``spec``'s secrets in every log line from now on (the CLI calls it on each load)."""
    _redactors.append(Redactor(spec))


def redact(text: str, *, any_url: bool = True) -> str:
    """``text`` with the secrets of every protected spec masked, and (``any_url``) the
    userinfo and query values of every URL in it, whoever configured it: log lines want
    both, server data on stdout (a tool's description) only the configured secrets."""
    for redactor in _redactors:
        text = redactor(text)
    return redact_urls(text) if any_url else text


@contextmanager
def route_logs(sink: Callable[[str], None]) -> Iterator[None]:
    """Send each (redacted) log line to ``sink`` instead of stderr while the block runs."""
    _sink.append(sink)
    try:
        yield
    finally:
        _sink.remove(sink)


def _write(line: str) -> None:
    line = redact(line)
    if _sink:
        _sink[-1](line)
    else:
        print(line, file=sys.stderr, flush=True)


class RedactingFilter(logging.Filter):
    """Masks secrets in a record's message and arguments before any handler formats it."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a bad format string: let the handler report it as logging does
            return True
        record.msg, record.args = redact(message), None
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        return True


class _StderrLogger:
    """Writes to whatever ``sys.stderr`` is *now*, so rich's Live display can redirect it."""

    def msg(self, message: str) -> None:
        _write(message)

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

    def emit(self, record: logging.LogRecord) -> None:
        try:
            # The filter masked the message; the formatted line (tracebacks, extra fields)
            # is masked again as a whole.
            _write(self.format(record))
        except Exception:
            self.handleError(record)


def configure_logging(level: str = "warning", *, json_output: bool | None = None) -> None:
    """Route structlog and stdlib logging at ``level`` and above to stderr.

    ``json_output=None`` picks JSON when stderr is not a terminal.
    """
    numeric = logging.getLevelNamesMapping()[level.upper()]
    _redactors.clear()  # a fresh configuration protects the configs loaded after it
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
    handler.addFilter(RedactingFilter())
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
