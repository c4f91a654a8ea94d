"""Running the MCP conformance suite's server scenarios against a URL, and reading the results.

The target is the Python SDK's own conformance fixture (the everything-server, vendored under
``fixture/``), over streamable HTTP on an ephemeral port of 127.0.0.1: once directly, once
behind ``mcpvisor serve --http`` as the gateway's one (so unprefixed) HTTP server. The suite
and Node 22 come from the npm registry through ``npx`` (cached in npm's own cache after the
first run); ``MCPVISOR_NPX`` overrides the ``npx`` command.
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
from typing import NamedTuple, TypeAlias

SUITE = "@modelcontextprotocol/conformance@0.2.0-alpha.12"
NODE = "node@22"
VERSIONS = ("2025-11-25", "2026-07-28")
FIXTURE = Path(__file__).with_name("fixture") / "serve.py"
ROOT = Path(__file__).parents[2]


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


class Check(NamedTuple):
    """One check's outcome: the suite's status and its message (empty when it gave none)."""

    status: str
    message: str


Results: TypeAlias = dict[tuple[str, str], Check]
"""``(scenario, check id) -> Check`` for one run of the suite."""

_SEVERITY = ("SUCCESS", "INFO", "SKIPPED", "WARNING", "FAILURE")


def run_suite(url: str, version: str, out: Path) -> Results:
    """Every server scenario of ``version`` run at ``url``; the results are kept in ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    script = (
        f"conformance server --url {shlex.quote(url)} --suite all "
        f"--spec-version {version} -o {shlex.quote(str(out))}"
    )
    subprocess.run(_npx(script), capture_output=True, text=True, timeout=600, check=False)
    return read_results(out)


def read_results(out: Path) -> Results:
    """The results the suite wrote under ``out`` (a ``checks.json`` per scenario run).

    A check the suite reports more than once in a scenario keeps its worst status.
    """
    results: Results = {}
    for checks in out.glob("*/checks.json"):
        match = re.match(r"server-(.+)-\d{4}-\d{2}-\d{2}T", checks.parent.name)
        scenario = match.group(1) if match else checks.parent.name
        for raw in json.loads(checks.read_text()):
            check = Check(raw["status"], raw.get("errorMessage") or "")
            seen = results.get((scenario, raw["id"]))
            if seen is None or _rank(check.status) > _rank(seen.status):
                results[scenario, raw["id"]] = check
    return results


def _rank(status: str) -> int:
    return _SEVERITY.index(status) if status in _SEVERITY else len(_SEVERITY)


def succeeded(results: Results) -> set[tuple[str, str]]:
    """The checks that succeeded (not merely informational, skipped or warned about)."""
    return {key for key, check in results.items() if check.status == "SUCCESS"}


def lost(direct: Results, gateway: Results) -> dict[str, Check]:
    """``scenario/check -> outcome through the gateway`` for every check that succeeds
    directly but not through the gateway: a warning, a skip, a failure, or never run (a
    scenario that stops early through the gateway reports fewer checks)."""
    missing = Check("MISSING", "not reported through the gateway")
    return {
        f"{scenario}/{check}": gateway.get((scenario, check), missing)
        for scenario, check in sorted(succeeded(direct) - succeeded(gateway))
    }


def _wait_for(process: subprocess.Popen[str], log: Path, pattern: str, limit: float) -> str:
    """The first group of ``pattern`` once it appears in ``log``, written by ``process``."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        found = re.search(pattern, log.read_text(), re.MULTILINE)
        if found:
            return found.group(1)
        if process.poll() is not None:
            break
        time.sleep(0.1)  # another process's output: nothing to wait on but the file
    tail = "\n".join(log.read_text().splitlines()[-20:])
    raise RuntimeError(f"{process.args!r} never printed {pattern!r} (log {log}):\n{tail}")


@contextmanager
def _process(args: list[str], *, log: Path) -> Iterator[subprocess.Popen[str]]:
    """``args`` running with its output in ``log`` (a file, so a full pipe never blocks it)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"}
    with log.open("w") as output:
        process = subprocess.Popen(args, text=True, env=env, stdout=output, stderr=output)
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
def fixture_direct(tmp: Path) -> Iterator[str]:
    """The SDK's fixture over streamable HTTP on 127.0.0.1; yields its MCP URL."""
    tmp.mkdir(parents=True, exist_ok=True)
    log = tmp / "fixture.log"
    with _process([sys.executable, str(FIXTURE)], log=log) as process:
        port = _wait_for(process, log, r"^PORT (\d+)", 60)
        yield f"http://127.0.0.1:{port}/mcp"


@contextmanager
def fixture_through_gateway(tmp: Path, protocol: str = "auto") -> Iterator[str]:
    """``mcpvisor serve --http`` in front of a fresh fixture; yields the gateway's URL.

    The gateway's one server is the fixture's HTTP endpoint, so names carry no prefix;
    ``protocol`` is the era the gateway speaks to it (the server spec's ``protocol``).
    """
    with fixture_direct(tmp / "downstream") as downstream:
        config = tmp / "conformance.json"
        entry = {"url": downstream, "protocol": protocol}
        config.write_text(json.dumps({"mcpServers": {"fixture": entry}}))
        args = [sys.executable, "-m", "mcpvisor", "serve", str(config), "--http", "127.0.0.1:0"]
        log = tmp / "gateway.log"
        with _process(args, log=log) as process:
            yield _wait_for(process, log, r"mcpvisor: serving (\S+)", 120)
