"""Running the MCP conformance suite's server scenarios against a URL, and reading the results.

The suite and Node 22 come from the npm registry through ``npx`` (cached in npm's own cache
after the first run); ``MCPVISOR_NPX`` overrides the ``npx`` command.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

SUITE = "@modelcontextprotocol/conformance@0.2.0-alpha.12"
NODE = "node@22"
VERSIONS = ("2025-11-25", "2026-07-28")
FIXTURE = Path(__file__).with_name("fixture_server.py")
ROOT = Path(__file__).parents[2]
PASSING = frozenset({"SUCCESS", "INFO", "SKIPPED", "WARNING"})
"""Statuses that are not a failure (a WARNING is a SHOULD the target does not meet)."""


def _npx(script: str) -> list[str]:
    npx = shlex.split(os.environ.get("MCPVISOR_NPX", "npx"))
    return [*npx, "-y", "-p", NODE, "-p", SUITE, "-c", script]


def suite_unavailable() -> str | None:
    """Why the suite cannot run here (no npx, registry unreachable), or None if it can."""
    try:
        done = subprocess.run(
            _npx("conformance --version"), capture_output=True, text=True, timeout=600
        )
    except FileNotFoundError:
        return "npx is not installed"
    except subprocess.TimeoutExpired:
        return "installing the conformance suite from the npm registry timed out"
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
        return "the npm registry is unreachable or the suite failed to start: " + " | ".join(tail)
    return None


def run_suite(url: str, version: str, out: Path) -> dict[tuple[str, str], str]:
    """``(scenario, check id) -> status`` for every server scenario of ``version`` at ``url``."""
    out.mkdir(parents=True, exist_ok=True)
    script = (
        f"conformance server --url {shlex.quote(url)} --suite all "
        f"--spec-version {version} -o {shlex.quote(str(out))}"
    )
    subprocess.run(_npx(script), capture_output=True, text=True, timeout=600, check=False)
    results: dict[tuple[str, str], str] = {}
    for checks in out.glob("*/checks.json"):
        match = re.match(r"server-(.+)-\d{4}-\d{2}-\d{2}T", checks.parent.name)
        scenario = match.group(1) if match else checks.parent.name
        for check in json.loads(checks.read_text()):
            results[scenario, check["id"]] = check["status"]
    return results


def failures(results: dict[tuple[str, str], str]) -> set[tuple[str, str]]:
    """The checks that failed."""
    return {key for key, status in results.items() if status not in PASSING}


def _read_until(stream: object, pattern: str, limit: float) -> str:
    deadline = time.monotonic() + limit
    assert hasattr(stream, "readline")
    while time.monotonic() < deadline:
        line = stream.readline()
        if not line:
            break
        found = re.search(pattern, line)
        if found:
            return found.group(1)
    raise RuntimeError(f"no line matching {pattern!r} within {limit} s")


@contextmanager
def _process(args: list[str], *, stream: str) -> Iterator[subprocess.Popen[str]]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    pipe = {"stdout": subprocess.PIPE} if stream == "stdout" else {"stderr": subprocess.PIPE}
    process = subprocess.Popen(args, text=True, env=env, **pipe)  # type: ignore[call-overload]
    try:
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextmanager
def fixture_direct() -> Iterator[str]:
    """The fixture server over streamable HTTP; yields its MCP URL."""
    with _process([sys.executable, str(FIXTURE), "--http"], stream="stdout") as process:
        port = _read_until(process.stdout, r"^PORT (\d+)", 60)
        yield f"http://127.0.0.1:{port}/mcp"


@contextmanager
def fixture_through_gateway(tmp: Path) -> Iterator[str]:
    """``mcpvisor serve --http`` in front of the fixture over stdio; yields the gateway's URL."""
    config = tmp / "conformance.json"
    server = {"command": sys.executable, "args": [str(FIXTURE)]}
    config.write_text(json.dumps({"mcpServers": {"fixture": server}}))
    args = [sys.executable, "-m", "mcpvisor", "serve", str(config), "--http", "127.0.0.1:0"]
    with _process(args, stream="stderr") as process:
        url = _read_until(process.stderr, r"mcpvisor: serving (\S+)", 120)
        yield url
