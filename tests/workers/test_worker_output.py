"""Server output as log lines: the stderr rate limit, redaction before the cut, era pinning."""

from __future__ import annotations

import sys
from pathlib import Path

import structlog
import trio
import trio.testing
from worker_helpers import FAST, running

from mcpvisor.specs import StdioSpec
from mcpvisor.workers.stderr_log import STDERR_LINE_CHARS, STDERR_LINES_PER_SECOND, StderrLog

BAD = Path(__file__).parent.parent / "servers" / "bad_server.py"


async def test_the_stderr_rate_limit_is_exactly_its_documented_number(
    mock_clock: trio.testing.MockClock,
) -> None:
    sink = StderrLog("srv", lambda text: text)
    with structlog.testing.capture_logs() as logs:
        for _ in range(STDERR_LINES_PER_SECOND + 7):
            sink.line(b"line")
        mock_clock.jump(0.999)
        sink.line(b"still the first window")
        mock_clock.jump(0.001)
        for _ in range(STDERR_LINES_PER_SECOND + 1):
            sink.line(b"second window")
        sink.flush()
    events = [(entry["event"], entry.get("lines")) for entry in logs]
    first = STDERR_LINES_PER_SECOND
    assert events[:first] == [("server.stderr", None)] * first
    # The second window opens with the report of what the first one suppressed.
    assert events[first] == ("server.stderr_suppressed", 8)
    assert events[first + 1 : 2 * first + 1] == [("server.stderr", None)] * first
    assert events[2 * first + 1 :] == [("server.stderr_suppressed", 1)]
    # A host that hides the lines (info) does not see their count either.
    assert {entry["log_level"] for entry in logs} == {"info"}


async def test_a_secret_straddling_the_cut_is_redacted_before_it() -> None:
    secret = "sk-straddling-secret-value"
    line = ("x" * (STDERR_LINE_CHARS - 5) + secret + "y" * 100).encode()
    with structlog.testing.capture_logs() as logs:
        StderrLog("srv", lambda text: text.replace(secret, "***")).line(line)
    [entry] = logs
    assert entry["truncated"] is True
    assert len(entry["line"]) == STDERR_LINE_CHARS
    assert entry["line"] == "x" * (STDERR_LINE_CHARS - 5) + "***yy"
    assert "sk-st" not in entry["line"]


async def test_legacy_protocol_skips_the_discover_probe() -> None:
    # This server never answers methods it does not know: under "auto", server/discover
    # would wait out its 10 s before falling back.
    spec = StdioSpec(
        name="old",
        command=sys.executable,
        args=(str(BAD), "--ignore-unknown", "--log-methods"),
        timeouts=FAST,
        protocol="legacy",
    )
    with structlog.testing.capture_logs() as logs:
        with trio.fail_after(30):
            async with running(spec) as worker:
                assert worker.ready is not None
                assert worker.ready.protocol_version == "2025-11-25"
                assert await worker.call("probe") is None
        await worker.wait_exit()
    methods = [entry["line"] for entry in logs if entry["event"] == "server.stderr"]
    assert methods[:2] == ["method initialize", "method notifications/initialized"]
    assert "method server/discover" not in methods


async def test_auto_protocol_asks_server_discover_first() -> None:
    spec = StdioSpec(
        name="old", command=sys.executable, args=(str(BAD), "--log-methods"), timeouts=FAST
    )
    with structlog.testing.capture_logs() as logs:
        async with running(spec) as worker:
            pass
        await worker.wait_exit()
    methods = [entry["line"] for entry in logs if entry["event"] == "server.stderr"]
    assert methods[0] == "method server/discover"
