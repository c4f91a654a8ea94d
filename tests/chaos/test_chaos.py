"""Chaos: eleven real servers under load while they are killed, hung, exited and restarted.

CI runs 20 seconds of faults. ``MCPVISOR_SOAK_SECONDS=N`` also runs ``test_soak`` (marked
``slow``) for N seconds, e.g. ``MCPVISOR_SOAK_SECONDS=300 uv run pytest tests/chaos -m slow``.
``MCPVISOR_CHAOS_SEED`` replays a seed (each run prints the one it used); processes and
timing are real, so a seed fixes the faults' schedule, not every interleaving.
"""

from __future__ import annotations

import os
import random
from collections.abc import Callable

import pytest

from tests.chaos.chaos_support import FAULT_KINDS, SUMMARIES, ChaosReport, run_chaos

CI_SECONDS = 20.0
SOAK_SECONDS = float(os.environ.get("MCPVISOR_SOAK_SECONDS") or 0)


def _seed() -> int:
    return int(os.environ.get("MCPVISOR_CHAOS_SEED") or random.randrange(2**31))


def _check(report: ChaosReport, record_property: Callable[[str, object], None]) -> None:
    line = report.summary()
    SUMMARIES.append(line)
    record_property("chaos_summary", line)
    print(line)
    assert report.violations == [], f"seed {report.seed}: {report.violations}"
    # The run must have exercised what it claims to check.
    assert report.requests["ok"] > 0
    assert set(report.faults) == set(FAULT_KINDS), "every fault kind it reports on was injected"
    assert all(report.faults[kind] > 0 for kind in FAULT_KINDS)
    assert sum(report.restarts.values()) > 0
    assert report.leaks == 0


async def test_chaos(record_property: Callable[[str, object], None]) -> None:
    report = await run_chaos(CI_SECONDS, _seed())
    _check(report, record_property)


@pytest.mark.slow
@pytest.mark.timeout(SOAK_SECONDS + 300)
@pytest.mark.skipif(not SOAK_SECONDS, reason="set MCPVISOR_SOAK_SECONDS=N to soak for N seconds")
async def test_soak(record_property: Callable[[str, object], None]) -> None:
    report = await run_chaos(SOAK_SECONDS, _seed())
    _check(report, record_property)
