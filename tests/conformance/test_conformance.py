"""The MCP conformance suite's server scenarios, directly and through the gateway.

The target is the Python SDK's own conformance fixture (vendored under fixture/). The direct
run is the baseline: every check that succeeds there must succeed through
``mcpvisor serve --http`` too, unless expected-gateway-failures.json lists it with a reason.
A warning counts as lost (it is a SHOULD the gateway misses), and so does a check the gateway
run never reports. Skips (with the reason) only when npx or the npm registry is unavailable.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conformance.harness import (
    VERSIONS,
    fixture_direct,
    fixture_through_gateway,
    lost,
    run_suite,
    succeeded,
    suite_unavailable,
)

DOWNSTREAM = {"2025-11-25": "legacy", "2026-07-28": "2026-07-28"}
"""The era the gateway speaks to the fixture in each run, as a deployment pins it per server:
the fixture's questions and log records are standalone requests in the one era and
input-required rounds in the other, so a suite run of one era exercises that path end to end."""

pytestmark = pytest.mark.xdist_group("npx-conformance")
"""Every test that runs the suite through npx goes to one worker: on a cold npm cache, two
npx processes installing the same packages at once can trip over each other's files."""

EXPECTED = json.loads(Path(__file__).with_name("expected-gateway-failures.json").read_text())


@pytest.fixture(scope="module")
def suite() -> None:
    reason = suite_unavailable()
    if reason is not None:
        pytest.skip(f"conformance suite unavailable: {reason}")


@pytest.mark.timeout(900)  # a first run installs Node 22 and the suite from npm
@pytest.mark.parametrize("version", VERSIONS)
def test_the_gateway_passes_what_the_server_passes(
    suite: None, version: str, tmp_path: Path
) -> None:
    with fixture_direct(tmp_path / "fixture") as url:
        direct = run_suite(url, version, tmp_path / "direct")
    with fixture_through_gateway(tmp_path / "gateway", DOWNSTREAM[version]) as url:
        gateway = run_suite(url, version, tmp_path / "gateway" / "results")
    assert direct, "the direct run produced no results"
    differences = lost(direct, gateway)
    print(
        f"\nconformance {version}: {len(succeeded(direct))}/{len(direct)} checks succeed "
        f"directly, {len(succeeded(gateway))}/{len(gateway)} through the gateway; "
        f"{len(differences)} lost"
    )
    for key, check in differences.items():
        print(f"  lost {key}: {check.status} {check.message}")
    expected = EXPECTED[version]
    new = [key for key in differences if key not in expected]
    fixed = [key for key in expected if key not in differences]
    assert new == [], "checks lost through the gateway that the expected-failures file lacks"
    assert fixed == [], "expected failures that now succeed: drop them from the file"
