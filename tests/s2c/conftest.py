"""Every server-to-client test starts with structlog unconfigured, as a host that never set it up.

``structlog.testing.capture_logs`` (used elsewhere in the suite) leaves structlog marked
configured, which would send mcpvisor's records to structlog's stdout printer instead of the
stdlib ``mcpvisor`` logger these tests read with ``caplog``.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import structlog


@pytest.fixture(autouse=True)
def _unconfigured_structlog() -> Iterator[None]:
    structlog.reset_defaults()
    yield
    structlog.reset_defaults()
