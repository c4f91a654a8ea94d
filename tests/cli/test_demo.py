"""``mcpvisor demo`` end to end: crashes, restarts, a drop, calls, and nothing left running."""

from __future__ import annotations

import signal
import subprocess
import sys

from cli_support import alive, cli_env, json_lines, mcpvisor


def test_demo_json_shows_restart_drop_and_calls_and_leaves_no_process() -> None:
    done = mcpvisor("demo", "--duration", "5", "--json", "--seed", "7")
    assert done.returncode == 0, done.stderr
    lines = json_lines(done.stdout)
    assert lines[0]["type"] == "start"
    assert lines[1]["type"] == "ready"
    summary = lines[-1]
    assert summary["type"] == "summary"

    servers = summary["servers"]
    assert servers["flaky"]["restarts"] >= 1
    assert servers["broken"]["state"] == "dropped"
    assert servers["notes"]["state"] == "active"
    assert servers["weather"]["state"] == "active"
    calls = summary["calls"]
    assert calls["succeeded"] > 0
    assert calls["made"] == calls["succeeded"] + calls["failed"] + calls["interrupted"]
    assert servers["weather"]["calls"]["ok"] > 0

    events = [e for e in lines if e["type"] == "event"]
    # Subscribed before startup: the log begins with every server starting.
    first = [e["server"] for e in events if e["old"] is None and e["new"] == "starting"]
    assert first == ["notes", "flaky", "weather", "broken"]
    crashes = [e for e in events if e["server"] == "flaky" and e["new"] == "failed"]
    assert crashes and crashes[0]["delay"] is not None
    assert any(
        e["server"] == "flaky" and e["old"] == "starting" and e["new"] == "active" for e in events
    )

    assert summary["pids"], "the demo saw no server process"
    assert [pid for pid in summary["pids"] if alive(pid)] == []


def test_demo_without_tty_prints_plain_lines_and_stops_on_sigint_with_a_summary() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "mcpvisor", "demo", "--duration", "60", "--seed", "3"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        env=cli_env(),
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        assert first.startswith("starting notes, flaky, weather, broken")
        ready = proc.stdout.readline()
        assert ready.startswith("ready: notes active")
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert "Traceback" not in err
    assert "stopped by signal" in out
    lines = out.splitlines()
    summary = next(i for i, line in enumerate(lines) if line.startswith("demo ran"))
    servers = [line.split()[0] for line in lines[summary + 1 :]]
    assert servers == ["notes", "flaky", "weather", "broken"]
    assert not any(line.lstrip().startswith("{") for line in lines)
