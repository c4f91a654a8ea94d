"""The live view on a real terminal (a pty): log lines appear in its event panel instead of
scrolling above the table, and check and run name a server that cannot start alike."""

from __future__ import annotations

import json
import os
import pty
import re
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

from cli_support import cli_env, json_lines, mcpvisor

ECHO_ARGS = Path(__file__).parent / "servers" / "echo_args.py"
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b[()][A-Z0-9]|\r")


def _failing_config(tmp_path: Path) -> str:
    server = {
        "command": sys.executable,
        "args": [str(ECHO_ARGS), "marker-in-stderr"],
        "restart": {"max_restarts": 2, "backoff": {"initial": 0.2, "jitter": 0}},
    }
    path = tmp_path / "mcp.json"
    path.write_text(json.dumps({"mcpServers": {"bad": server}}))
    return str(path)


def test_log_lines_go_into_the_event_panel(tmp_path: Path) -> None:
    primary, secondary = pty.openpty()
    env = {**cli_env(), "COLUMNS": "160", "LINES": "60", "TERM": "xterm"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "mcpvisor", "--log-level", "info", "run", _failing_config(tmp_path)],
        stdin=subprocess.DEVNULL,
        stdout=secondary,
        stderr=secondary,
        env=env,
    )
    os.close(secondary)
    output = b""
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and output.count(b"dropped") < 2:
            ready, _, _ = select.select([primary], [], [], 0.5)
            if ready:
                try:
                    output += os.read(primary, 65536)
                except OSError:
                    break
        proc.send_signal(signal.SIGINT)
        end = time.monotonic() + 30
        while time.monotonic() < end and proc.poll() is None:
            ready, _, _ = select.select([primary], [], [], 0.2)
            if ready:
                try:
                    output += os.read(primary, 65536)
                except OSError:
                    break
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(primary)
    text = ANSI.sub("", output.decode("utf-8", "replace"))
    marked = [line for line in text.split("\n") if "marker-in-stderr" in line]
    assert marked, "the server's stderr was never logged"
    # Inside the panel (its border on both sides), never a bare line above the view.
    assert all(line.strip().startswith("│") for line in marked), marked


def test_check_and_run_use_the_same_word_for_a_server_that_cannot_start(
    tmp_path: Path,
) -> None:
    config = _failing_config(tmp_path)
    checked = mcpvisor("check", "--json", config)
    (row,) = json_lines(checked.stdout)[-1]["servers"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "mcpvisor", "run", "--json", config],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        env=cli_env(),
    )
    try:
        assert proc.stdout is not None
        final = None
        for line in proc.stdout:
            record = json.loads(line)
            if record.get("type") == "event" and record["new"] == "dropped":
                final = record
                break
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert final is not None
    assert row["state"] == final["new"] == "dropped"
    assert "exited with code 3" in row["error"] and "exited with code 3" in final["cause"]
