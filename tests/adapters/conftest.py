"""The adapter tests drive asyncio themselves (``asyncio.run``), like tests/aio, whose helpers
(the recording server, ``run``) they share."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent.parent / "aio"))
sys.path.insert(0, str(Path(__file__).parent))
