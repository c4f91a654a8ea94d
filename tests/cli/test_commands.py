"""``check``, ``tools``, ``call`` and ``run`` against fixture configs, and error handling."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from cli_support import FIXTURES, alive, cli_env, json_lines, mcpvisor, read_until_ready

from mcpvisor.cli import main

DESKTOP = str(FIXTURES / "desktop.json")
VSCODE = str(FIXTURES / "vscode.json")


def test_check_passes_when_every_required_server_is_up(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", DESKTOP]) == 0
    out = capsys.readouterr().out
    rows = {line.split()[0]: line for line in out.splitlines() if line.strip()}
    assert "active" in rows["notes"]
    assert "active" not in rows["broken"]
    assert "1/2 servers up" in out


def test_check_strict_fails_on_any_server_down_and_reports_why(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["check", DESKTOP, "--strict", "--json"]) == 1
    (report,) = json_lines(capsys.readouterr().out)
    assert report["ok"] is False
    rows = {row["server"]: row for row in report["servers"]}
    assert rows["notes"]["state"] == "active"
    assert rows["notes"]["tools"] == 3
    assert rows["notes"]["required"] is True
    assert rows["broken"]["state"] != "active"
    assert rows["broken"]["tools"] == 0
    assert rows["broken"]["error"]
    assert rows["broken"]["transport"] == "stdio"


def test_check_fails_when_no_server_came_up_even_if_none_is_required(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = json.loads((FIXTURES / "desktop.json").read_text())["mcpServers"]["broken"]
    config = tmp_path / "mcp.json"
    config.write_text(json.dumps({"mcpServers": {"a": broken, "b": broken}}))
    assert main(["check", str(config)]) == 1
    assert "0/2 servers up (* required): FAILED" in capsys.readouterr().out
    assert main(["check", str(config), "--json"]) == 1
    (report,) = json_lines(capsys.readouterr().out)
    assert report["ok"] is False


def test_tools_lists_namespaced_tools(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["tools", VSCODE, "--json"]) == 0
    (listing,) = json_lines(capsys.readouterr().out)
    names = {t["qualified_name"] for t in listing["tools"]}
    assert names == {"notes__echo", "notes__add", "notes__word_count"}
    add = next(t for t in listing["tools"] if t["name"] == "add")
    assert set(add["input_schema"]["properties"]) == {"a", "b"}


def test_call_prints_the_tool_result() -> None:
    done = mcpvisor("call", VSCODE, "notes__add", '{"a": 2, "b": 40}')
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "42.0"


def test_call_json_prints_the_raw_result(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["call", VSCODE, "notes__echo", '{"text": "hi"}', "--json"]) == 0
    (result,) = json_lines(capsys.readouterr().out)
    assert result["content"][0]["text"] == "hi"
    assert result["isError"] is False


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (["call", VSCODE, "nots__echo", "{}"], "did you mean 'notes'"),
        (["call", VSCODE, "notes__echo", "{not json"], "not valid JSON"),
        (["call", VSCODE, "notes__echo", "[1, 2]"], "must be a JSON object"),
        (["call", VSCODE, "echo", "{}"], "server__tool"),
        (["check", str(FIXTURES / "bad.json")], "notes.restart"),
        (["check", str(FIXTURES / "missing.json")], "no such file"),
    ],
)
def test_usage_and_config_errors_are_one_line_with_exit_2(
    argv: list[str], fragment: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("mcpvisor: error: ")
    assert fragment in err
    assert len(err.strip().splitlines()) == 1
    assert "Traceback" not in err


def test_call_to_a_server_that_cannot_start_says_so_without_calling_it_required(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["call", DESKTOP, "broken__anything", "{}"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("mcpvisor: error: server 'broken' is dropped: "), err
    assert "required" not in err
    assert len(err.strip().splitlines()) == 1


def test_call_cut_off_by_a_crash_says_the_call_was_interrupted(tmp_path: Path) -> None:
    config = tmp_path / "flaky.json"
    flaky = {"command": sys.executable, "args": ["-m", "mcpvisor.demo.flaky", "--crash-after", "1"]}
    config.write_text(json.dumps({"mcpServers": {"flaky": flaky}}))
    done = mcpvisor("call", str(config), "flaky__lookup", '{"key": "k"}')
    assert done.returncode == 1
    err = done.stderr.strip().splitlines()[-1]
    assert err.startswith("mcpvisor: error: call_tool on server 'flaky' was interrupted: "), err
    assert "dropped" not in err and "Traceback" not in err


def test_debug_shows_the_traceback(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--debug", "check", str(FIXTURES / "bad.json")]) == 2
    err = capsys.readouterr().err
    assert "Traceback" in err
    assert err.rstrip().splitlines()[-1].startswith("mcpvisor: error: bad config")


def test_unknown_tool_on_a_running_server_exits_nonzero_without_traceback() -> None:
    done = mcpvisor("call", VSCODE, "notes__ecco", "{}")
    assert done.returncode == 2
    assert "did you mean 'echo'" in done.stderr
    assert "Traceback" not in done.stderr


def test_version_and_help(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as version:
        main(["--version"])
    assert version.value.code == 0
    assert capsys.readouterr().out.startswith("mcpvisor 0.")
    with pytest.raises(SystemExit) as helped:
        main(["--help"])
    assert helped.value.code == 0
    out = capsys.readouterr().out
    for command in ("demo", "run", "check", "tools", "call", "config"):
        assert command in out


def test_run_stops_cleanly_on_sigint_and_leaves_no_process() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "mcpvisor", "run", DESKTOP],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        env=cli_env(),
    )
    try:
        assert proc.stdout is not None
        startup = read_until_ready(proc.stdout)
        # Startup events come first (the subscription predates startup), then "ready".
        ready = startup[-1]
        assert {"notes", "broken"} <= {e["server"] for e in startup if e["type"] == "event"}
        servers = ready["status"]["servers"]
        assert servers["notes"]["state"] == "active"
        pids = [s["pid"] for s in servers.values() if s["pid"] is not None]
        assert pids
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert "Traceback" not in err
    last = json_lines(out)[-1]
    assert last == {"type": "stopped", "signal": "SIGINT"}
    assert [pid for pid in pids if alive(pid)] == []
