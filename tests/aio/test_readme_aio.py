"""The README's asyncio example runs as written."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

README = Path(__file__).resolve().parents[2] / "README.md"


def test_the_asyncio_example_runs() -> None:
    text = README.read_text()
    start = text.index("## asyncio hosts\n")
    end = text.find("\n## ", start + 1)
    block = re.search(r"```python\n(.*?)```", text[start : end if end != -1 else None], re.S)
    assert block is not None
    done = subprocess.run(
        [sys.executable, "-c", block.group(1)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "5.0 healthy"
