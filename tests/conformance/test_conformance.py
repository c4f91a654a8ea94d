"""The MCP conformance suite's server scenarios, directly and through the gateway.

The direct run against the fixture is the baseline; every check that passes there must pass
through ``mcpvisor serve --http`` too, unless expected-gateway-failures.json lists it with a
reason. Skips (with the reason) only when npx or the npm registry is unavailable.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conformance.harness import (
    VERSIONS,
    failures,
    fixture_direct,
    fixture_through_gateway,
    run_suite,
    suite_unavailable,
)

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
    with fixture_direct() as url:
        direct = run_suite(url, version, tmp_path / "direct")
    with fixture_through_gateway(tmp_path) as url:
        gateway = run_suite(url, version, tmp_path / "gateway")
    assert direct, "the direct run produced no results"
    assert set(gateway) >= {key for key in direct if key[0] != "dns-rebinding-protection"}
    lost = sorted(
        f"{scenario}/{check}"
        for scenario, check in failures(gateway) - failures(direct)
        if (scenario, check) in direct
    )
    expected = sorted(EXPECTED[version])
    passed = len(direct) - len(failures(direct))
    print(
        f"\nconformance {version}: direct {passed}/{len(direct)} checks, through the gateway "
        f"{len(gateway) - len(failures(gateway))}/{len(gateway)}; lost: {lost or 'none'}"
    )
    assert [k for k in lost if k not in expected] == [], "new differences from the direct run"
    assert [k for k in expected if k not in lost] == [], "expected failures that now pass"
