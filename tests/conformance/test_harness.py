"""How the harness reads the suite's results and tells what the gateway lost."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conformance.harness import Check, lost, read_results

OK = Check("SUCCESS", "")


def test_a_check_is_lost_when_it_fails_warns_or_goes_missing_through_the_gateway() -> None:
    direct = {
        ("a", "same"): OK,
        ("a", "fails"): OK,
        ("a", "warns"): OK,
        ("a", "missing"): OK,
        ("b", "informational"): Check("INFO", ""),
        ("b", "fails-both-ways"): Check("FAILURE", "x"),
    }
    gateway = {
        ("a", "same"): OK,
        ("a", "fails"): Check("FAILURE", "boom"),
        ("a", "warns"): Check("WARNING", "should"),
        ("b", "informational"): Check("FAILURE", "y"),
        ("b", "fails-both-ways"): Check("FAILURE", "x"),
        ("c", "only-through-the-gateway"): Check("FAILURE", "z"),
    }
    assert lost(direct, gateway) == {
        "a/fails": Check("FAILURE", "boom"),
        "a/missing": Check("MISSING", "not reported through the gateway"),
        "a/warns": Check("WARNING", "should"),
    }


def test_results_keep_the_worst_status_of_a_repeated_check(tmp_path: Path) -> None:
    scenario = tmp_path / "server-tools-list-2026-12-02T00-55-44-014Z"
    scenario.mkdir()
    checks = [
        {"id": "step", "status": "INFO"},
        {"id": "step", "status": "WARNING", "errorMessage": "late"},
        {"id": "step", "status": "SUCCESS"},
        {"id": "listed", "status": "SUCCESS"},
    ]
    (scenario / "checks.json").write_text(json.dumps(checks))
    assert read_results(tmp_path) == {
        ("tools-list", "step"): Check("WARNING", "late"),
        ("tools-list", "listed"): OK,
    }
