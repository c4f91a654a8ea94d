"""``mcpvisor run`` reloading a real config file: with ``--watch`` on an edit, and on SIGHUP.

Real processes throughout: the CLI runs as a subprocess on a config file in a temporary
directory, supervising raw JSON-RPC test servers. Each server is started through ``sh``, which
appends its name and pid to a start log and then ``exec``s the server (same pid), so the test
knows every process each server ever had, and whether it is still alive.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.cli.cli_support import alive, cli_env
from tests.conftest import RAW_SERVER

WAIT = 60.0
"""Bound for each wait on the CLI; generous, since the machine may be loaded."""


def server(name: str, log: Path, *flags: str) -> dict[str, Any]:
    line = f'echo "{name} $$" >> "{log}"; exec "{sys.executable}" "{RAW_SERVER}" {" ".join(flags)}'
    return {"command": "sh", "args": ["-c", line]}


def write_config(path: Path, servers: dict[str, dict[str, Any]]) -> None:
    """Replace ``path`` atomically, as editors save."""
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"mcpServers": servers}, indent=2))
    os.replace(tmp, path)


def starts(log: Path) -> dict[str, list[int]]:
    """Every pid each server was started with, in order."""
    out: dict[str, list[int]] = {}
    for line in log.read_text().splitlines() if log.exists() else []:
        name, pid = line.split()
        out.setdefault(name, []).append(int(pid))
    return out


class Run:
    """A running ``mcpvisor run --json`` and the JSON lines it has written so far."""

    def __init__(self, config: Path, *flags: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "mcpvisor", "run", "--json", *flags, str(config)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            text=True,
            env=cli_env(),
        )
        self.lines: queue.Queue[dict[str, Any]] = queue.Queue()
        self.seen: list[dict[str, Any]] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if line.strip():
                self.lines.put(json.loads(line))

    def next(self, want: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
        """The next line for which ``want`` holds (lines before it are kept in ``seen``)."""
        deadline = time.monotonic() + WAIT
        while True:
            try:
                record = self.lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"no matching line; saw {self.seen}") from None
            self.seen.append(record)
            if want(record):
                return record

    def all_of(self, *wants: Callable[[dict[str, Any]], bool]) -> None:
        """Wait until a line for each of ``wants`` has arrived, in any order."""
        left = list(wants)
        while left:
            record = self.next(lambda r, pending=tuple(left): any(w(r) for w in pending))
            left = [w for w in left if not w(record)]

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=WAIT)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture
def run_cli() -> Iterator[Callable[..., Run]]:
    runs: list[Run] = []

    def start(config: Path, *flags: str) -> Run:
        runs.append(Run(config, *flags))
        return runs[-1]

    yield start
    for r in runs:
        if r.proc.poll() is None:
            r.stop()


def exits(pid: int) -> bool:
    """Whether ``pid`` is gone within WAIT seconds (a stopped server's teardown is bounded)."""
    deadline = time.monotonic() + WAIT
    while alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def is_reload(reason: str) -> Callable[[dict[str, Any]], bool]:
    return lambda r: r.get("kind") == "reload" and r.get("reason") == reason


def is_state(server: str, new: str) -> Callable[[dict[str, Any]], bool]:
    return lambda r: r.get("kind") == "state" and r["server"] == server and r["new"] == new


def test_an_edit_under_watch_restarts_only_the_changed_server(
    tmp_path: Path, run_cli: Callable[..., Run]
) -> None:
    log, config = tmp_path / "starts.log", tmp_path / "mcp.json"
    write_config(config, {n: server(n, log) for n in ("keep", "change", "gone")})
    run = run_cli(config, "--watch")
    ready = run.next(lambda r: r["type"] == "ready")
    pids = {n: s["pid"] for n, s in ready["status"]["servers"].items()}
    assert pids == {n: p[0] for n, p in starts(log).items()}

    write_config(
        config,
        {
            "keep": server("keep", log),
            "change": server("change", log, "--v2"),
            "added": server("added", log),
        },
    )
    applied = run.next(is_reload("applied"))
    assert applied["server"] == "*"
    assert applied["cause"] == "added added; removed gone; restarted change (args)"
    run.all_of(is_state("change", "active"), is_state("added", "active"))
    history = starts(log)
    assert history["keep"] == [pids["keep"]] and alive(pids["keep"])
    assert len(history["change"]) == 2 and alive(history["change"][1])
    assert exits(pids["change"]) and exits(pids["gone"])
    assert alive(history["added"][0])
    after_reload = run.seen[run.seen.index(applied) :]
    assert not [r for r in after_reload if r.get("server") == "keep"]
    gone = [r for r in after_reload if r.get("server") == "gone"]
    assert [(r["old"], r["new"], r["reason"]) for r in gone] == [("active", None, "removed")]

    # A broken edit keeps everything running and says why; fixing it reloads again.
    config.write_text('{"mcpServers": {"keep": ')
    rejected = run.next(is_reload("rejected"))
    assert rejected["cause"]
    running = {n: p[-1] for n, p in starts(log).items() if n != "gone"}
    assert all(alive(pid) for pid in running.values()) and len(running) == 3
    write_config(config, {"keep": server("keep", log)})
    applied = run.next(is_reload("applied"))
    assert applied["cause"] == "removed change, added"
    assert starts(log)["keep"] == [pids["keep"]] and alive(pids["keep"])
    run.stop()
    assert run.proc.returncode == 0
    assert run.next(lambda r: r["type"] == "stopped")["signal"] == "SIGTERM"
    assert all(exits(p) for ps in starts(log).values() for p in ps)


def test_sighup_reloads_run(tmp_path: Path, run_cli: Callable[..., Run]) -> None:
    log, config = tmp_path / "starts.log", tmp_path / "mcp.json"
    write_config(config, {"one": server("one", log)})
    run = run_cli(config)
    ready = run.next(lambda r: r["type"] == "ready")
    first = ready["status"]["servers"]["one"]["pid"]
    write_config(config, {"one": server("one", log), "two": server("two", log)})
    run.proc.send_signal(signal.SIGHUP)
    applied = run.next(is_reload("applied"))
    assert applied["cause"] == "added two"
    run.next(is_state("two", "active"))
    assert run.proc.poll() is None and starts(log)["one"] == [first] and alive(first)
    # SIGHUP again with nothing changed: a reload that changes nothing, still reported.
    run.proc.send_signal(signal.SIGHUP)
    assert run.next(is_reload("applied"))["cause"] == "no changes"
    run.stop()
    assert run.proc.returncode == 0
