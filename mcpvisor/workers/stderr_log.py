"""A server's stray output as log lines: redacted, then cut, then rate limited.

Used for stderr (event ``server.stderr``) and for stdout lines that are not JSON-RPC (event
``server.stdout_skipped``: banners, stray prints). Redaction comes first so a secret that
straddles the cut cannot leak its first half.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import trio

from mcpvisor.specs._logging import library_logger

_log = library_logger()

STDERR_LINE_CHARS = 2000
"""Longer stderr lines are cut to this many characters (after redaction) before they are logged."""

STDERR_LINES_PER_SECOND = 50
"""At most this many stderr lines are logged per one-second window; the rest are counted, and
the count is logged (``server.stderr_suppressed``) when the window ends."""

SKIPPED_LINE_CHARS = 200
"""Non-JSON-RPC stdout lines are logged cut to this many characters."""

SKIPPED_LINES_PER_SECOND = 10
"""At most this many non-JSON-RPC stdout lines are logged per one-second window."""


class StderrLog:
    """Logs lines of one server's output, redacted, cut to length and rate limited.

    A window opens at the first line after the previous one closed and lasts one second of
    Trio's clock; at most ``per_second`` lines are logged in it, and the lines over that are
    counted and reported as ``<event>_suppressed`` when the next window opens or on
    :meth:`flush`.
    """

    def __init__(
        self,
        server: str,
        redact: Callable[[str], str],
        *,
        event: str = "server.stderr",
        per_second: int = STDERR_LINES_PER_SECOND,
        chars: int = STDERR_LINE_CHARS,
    ) -> None:
        self._server = server
        self._redact = redact
        self._event = event
        self._per_second = per_second
        self._chars = chars
        self._window_start = -math.inf
        self._in_window = 0
        self._suppressed = 0

    def line(self, raw: bytes | bytearray) -> None:
        """Log one line (without its newline), unless this window's quota is spent."""
        now = trio.current_time()
        if now - self._window_start >= 1.0:
            self.flush()
            self._window_start, self._in_window = now, 0
        if self._in_window >= self._per_second:
            self._suppressed += 1
            return
        self._in_window += 1
        text = self._redact(bytes(raw).decode("utf-8", errors="replace").rstrip("\r"))
        truncated = len(text) > self._chars
        _log.info(
            self._event,
            server=self._server,
            line=text[: self._chars],
            **({"truncated": True} if truncated else {}),
        )

    def flush(self) -> None:
        """Report the lines suppressed so far, if any."""
        if self._suppressed:
            # At the lines' own level: where they are not shown, neither is their count.
            _log.info(f"{self._event}_suppressed", server=self._server, lines=self._suppressed)
            self._suppressed = 0
