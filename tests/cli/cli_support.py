"""Helpers for running the ``mcpvisor`` command as a real subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import IO, Any

FIXTURES = Path(__file__).parent / "fixtures"


def cli_env() -> dict[str, str]:
    """The environment for a CLI run: fixture configs name the interpreter as ${PYTHON}."""
    env = dict(os.environ)
    env["PYTHON"] = sys.executable
    env.pop("COLUMNS", None)
    return env


def mcpvisor(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run ``python -m mcpvisor ARGS`` to completion, capturing text output."""
    return subprocess.run(
        [sys.executable, "-m", "mcpvisor", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=cli_env(),
        stdin=subprocess.DEVNULL,
    )


def json_lines(text: str) -> list[dict[str, Any]]:
    """Every stdout line parsed as JSON (each one must be)."""
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def read_until_ready(stdout: IO[str]) -> list[dict[str, Any]]:
    """JSON lines from ``run --json`` up to and including ``{"type": "ready"}``."""
    seen: list[dict[str, Any]] = []
    for line in stdout:
        seen.append(json.loads(line))
        if seen[-1]["type"] == "ready":
            return seen
    raise AssertionError(f"the output ended before 'ready': {seen}")


def alive(pid: int) -> bool:
    """Whether ``pid`` is a live (not zombie) process."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False
