"""Every command stops cleanly on SIGINT, SIGTERM and SIGHUP and leaves no process behind,
not even a daemon a server double-forked out of its process group; the demo's HTTP child
also dies with a SIGKILLed command.

Each test runs the real CLI as a subprocess against a server that starts such a daemon,
waits until both exist, sends the signal, and checks every pid in /proc afterwards.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from cli_support import alive, cli_env, read_until_ready

DAEMONIZING = Path(__file__).parent / "servers" / "daemonizing.py"
SIGNALS = [signal.SIGINT, signal.SIGTERM, signal.SIGHUP]


def _config(tmp_path: Path, *flags: str) -> str:
    path = tmp_path / "mcp.json"
    server = {
        "command": sys.executable,
        "args": [str(DAEMONIZING), str(tmp_path), *flags],
        "timeouts": {"initialize": 120, "request": 120},
        "protocol": "legacy",
    }
    path.write_text(json.dumps({"mcpServers": {"srv": server}}))
    return str(path)


def _wait_for(path: Path, timeout: float = 60) -> int:
    deadline = time.monotonic() + timeout
    # Another process writes it: poll until it holds a whole pid.
    while not (path.exists() and path.read_text().strip().isdigit()):
        assert time.monotonic() < deadline, f"{path.name} never appeared"
        time.sleep(0.05)
    return int(path.read_text())


def _gone(pids: list[int], timeout: float = 30) -> list[int]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        left = [pid for pid in pids if alive(pid)]
        if not left:
            return []
        time.sleep(0.1)
    return [pid for pid in pids if alive(pid)]


@pytest.fixture
def spawn() -> Iterator[list[subprocess.Popen[str]]]:
    procs: list[subprocess.Popen[str]] = []
    yield procs
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _start(procs: list[subprocess.Popen[str]], *argv: str) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "mcpvisor", *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        env=cli_env(),
    )
    procs.append(proc)
    return proc


@pytest.mark.parametrize("sig", SIGNALS, ids=lambda s: s.name)
@pytest.mark.parametrize(
    ("command", "flags"),
    [
        (["check", "--json"], ["--no-initialize"]),  # stopped while a server is starting
        (["tools"], ["--no-initialize"]),
        (["call", "CONFIG", "srv__hang", "{}"], []),  # stopped while a call is in flight
    ],
    ids=["check", "tools", "call"],
)
def test_one_shot_commands_stop_on_signal_and_leave_nothing(
    command: list[str],
    flags: list[str],
    sig: signal.Signals,
    tmp_path: Path,
    spawn: list[subprocess.Popen[str]],
) -> None:
    config = _config(tmp_path, *flags)
    argv = [config if a == "CONFIG" else a for a in command]
    if "CONFIG" not in command:
        argv.append(config)
    proc = _start(spawn, *argv)
    pids = [_wait_for(tmp_path / "server"), _wait_for(tmp_path / "daemon")]
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + sig, err
    assert f"interrupted by {sig.name}" in err
    assert "Traceback" not in err
    assert _gone(pids, timeout=5) == []


# SIGHUP reloads `run` instead (tests/cli/test_reload_run.py).
@pytest.mark.parametrize("sig", [s for s in SIGNALS if s != signal.SIGHUP], ids=lambda s: s.name)
def test_run_stops_on_signal_and_leaves_nothing(
    sig: signal.Signals, tmp_path: Path, spawn: list[subprocess.Popen[str]]
) -> None:
    proc = _start(spawn, "run", "--json", _config(tmp_path))
    assert proc.stdout is not None
    ready = read_until_ready(proc.stdout)[-1]
    assert ready["status"]["servers"]["srv"]["state"] == "active"
    pids = [_wait_for(tmp_path / "server"), _wait_for(tmp_path / "daemon")]
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert json.loads(out.splitlines()[-1]) == {"type": "stopped", "signal": sig.name}
    assert _gone(pids, timeout=5) == []


def _demo_pids(proc: subprocess.Popen[str]) -> list[int]:
    assert proc.stdout is not None
    start = json.loads(proc.stdout.readline())
    assert start["type"] == "start"
    ready = json.loads(proc.stdout.readline())
    assert ready["type"] == "ready"
    servers = ready["status"]["servers"].values()
    return [start["http_pid"], *(s["pid"] for s in servers if s["pid"] is not None)]


@pytest.mark.parametrize("sig", SIGNALS, ids=lambda s: s.name)
def test_demo_stops_on_signal_with_a_summary(
    sig: signal.Signals, spawn: list[subprocess.Popen[str]]
) -> None:
    proc = _start(spawn, "demo", "--json", "--duration", "120", "--seed", "1")
    pids = _demo_pids(proc)
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    summary = json.loads(out.splitlines()[-1])
    assert summary["type"] == "summary"
    assert (summary["stopped_by"], summary["signal"]) == ("signal", sig.name)
    assert _gone(pids, timeout=5) == []


def test_the_demo_http_server_dies_with_a_sigkilled_demo(
    spawn: list[subprocess.Popen[str]],
) -> None:
    proc = _start(spawn, "demo", "--json", "--duration", "120", "--seed", "2")
    pids = _demo_pids(proc)
    # Keep reading so the demo never blocks on a full pipe before the kill.
    drain = threading.Thread(target=proc.communicate, daemon=True)
    drain.start()
    proc.kill()
    drain.join(timeout=30)
    # Nothing is left to reap them but their own watch on the pipe the demo held.
    assert _gone(pids, timeout=30) == []


def test_a_reader_that_goes_away_stops_the_demo_quietly_and_cleanly(
    spawn: list[subprocess.Popen[str]],
) -> None:
    proc = _start(spawn, "demo", "--json", "--duration", "120", "--seed", "4")
    pids = _demo_pids(proc)
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # as `mcpvisor demo --json | head -2` does
    proc.wait(timeout=60)
    err = proc.stderr.read()
    assert proc.returncode == 141, err
    assert "error" not in err and "Traceback" not in err
    assert _gone(pids, timeout=5) == []


def _state(pid: int) -> str | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return raw[raw.rindex(")") + 2 :].split()[0]


def test_run_reaps_an_adopted_daemon_that_exits_while_it_runs(
    tmp_path: Path, spawn: list[subprocess.Popen[str]]
) -> None:
    proc = _start(spawn, "run", "--json", _config(tmp_path, "--daemon-seconds", "0.5"))
    assert proc.stdout is not None
    read_until_ready(proc.stdout)
    daemon = _wait_for(tmp_path / "daemon")
    # It exits half a second in; as an adopted child of `run` it would stay a zombie until
    # `run` exits, unless `run` reaps it.
    deadline = time.monotonic() + 60
    while _state(daemon) is not None and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _state(daemon) is None, f"daemon {daemon} still {_state(daemon)}"
    assert proc.poll() is None
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=60)
    assert proc.returncode == 0
