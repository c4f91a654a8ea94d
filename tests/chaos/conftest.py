"""Prints each chaos run's summary line at the end of the normal pytest output."""

from __future__ import annotations

import pytest

from tests.chaos import chaos_support


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    for line in chaos_support.SUMMARIES:
        terminalreporter.write_line(line)
