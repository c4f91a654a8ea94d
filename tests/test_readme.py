"""The README's promises: its two commands, and its embedding example, which runs as written."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

README = Path(__file__).parent.parent / "README.md"


def section(title: str) -> str:
    text = README.read_text()
    start = text.index(f"## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else len(text)]


def test_the_two_commands_come_first() -> None:
    first_block = re.search(r"```sh\n(.*?)```", README.read_text(), re.S)
    assert first_block is not None
    commands = [line.split("#")[0].strip() for line in first_block.group(1).splitlines()]
    assert commands == ["uv run mcpvisor demo", "uv run pytest"]


def test_the_embedding_example_runs() -> None:
    block = re.search(r"```python\n(.*?)```", section("Embed it"), re.S)
    assert block is not None
    code = block.group(1)
    assert len(code.strip().splitlines()) <= 20
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()[-2:]
    assert lines[0] == "['notes__echo', 'notes__add', 'notes__word_count']"
    assert lines[1] == "5.0 healthy"
