"""The asyncio tests are plain functions that call ``asyncio.run`` (or ``uvloop.run``)
themselves, so pytest-trio's ``trio_mode`` never takes them over."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
