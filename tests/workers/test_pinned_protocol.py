"""A session pinned to the 2026-07-28 protocol still learns what its server offers.

The SDK adopts a pinned version without asking ``server/discover``, assuming no capabilities;
the worker asks, so the catalog lists the server's tools, resources and prompts.
"""

from __future__ import annotations

import pytest

import mcpvisor as mv
from tests.s2c.support import stdio_spec


@pytest.mark.parametrize("protocol", ["2026-07-28", "auto"])
async def test_a_pinned_modern_session_lists_its_catalog(protocol: str) -> None:
    spec = mv.SupervisorSpec([stdio_spec(protocol=protocol)])
    async with mv.open_supervisor(spec) as client:
        catalog = client.catalog("s2c")
        assert catalog.protocol_version == "2026-07-28"
        assert catalog.capabilities is not None and catalog.capabilities.tools is not None
        assert {"ask_model", "touch", "state"} <= {t.name for t in catalog.tools}
        assert "res://counter" in {str(r.uri) for r in catalog.resources}
        assert "greet" in {p.name for p in catalog.prompts}
        assert [t.tool.name for t in await client.list_tools() if t.tool.name == "state"]
