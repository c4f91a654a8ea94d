"""``mcpvisor demo`` end to end: crashes, restarts, a drop, calls, and nothing left running."""

from __future__ import annotations

from cli_support import alive, json_lines, mcpvisor


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
    crashes = [e for e in events if e["server"] == "flaky" and e["new"] == "failed"]
    assert crashes and crashes[0]["delay"] is not None
    assert any(
        e["server"] == "flaky" and e["old"] == "starting" and e["new"] == "active" for e in events
    )

    assert summary["pids"], "the demo saw no server process"
    assert [pid for pid in summary["pids"] if alive(pid)] == []


def test_demo_without_tty_prints_plain_lines() -> None:
    done = mcpvisor("demo", "--duration", "1", "--seed", "3")
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "ready:" in out
    assert "demo ran" in out
    assert "notes" in out and "restarts" in out
    assert not out.lstrip().startswith("{")
