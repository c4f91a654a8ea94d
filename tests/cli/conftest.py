"""In-process CLI runs: fixture configs find the interpreter as ${PYTHON}, and the logging
configuration ``main`` installs does not leak into other tests."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator

import pytest
import structlog


@pytest.fixture(autouse=True)
def _restore_logging(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("PYTHON", sys.executable)
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    config = structlog.get_config()
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    structlog.configure(**config)
