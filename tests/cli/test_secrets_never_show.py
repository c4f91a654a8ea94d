"""Secrets never show: a server that echoes its credentials back in an error, or prints its
arguments, leaks none of them into reprs, errors, events, status, logs or the CLI's output.

Each leak class configures a real secret (literal, or through ``${VAR}``) and a real server
that echoes it in the form servers do: the token after ``Bearer``, the request path with its
query, the Basic header an HTTP client makes of URL userinfo, a stdio server's argv and env.
"""

from __future__ import annotations

import base64
import json
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import trio
from cli_support import cli_env

import mcpvisor as mv

SERVERS = Path(__file__).parent / "servers"
ECHO_HTTP = SERVERS / "echo_credentials.py"
ECHO_ARGS = SERVERS / "echo_args.py"

ENVIRON = {
    "API_KEY": "key-SENTINEL-from-env",
    "DB_PASSWORD": "dbpw-SENTINEL-from-env",
}


def _basic(user: str, password: str) -> str:
    return base64.b64encode(f"{user}:{password}".encode()).decode()


@pytest.fixture(scope="module")
def port() -> Iterator[int]:
    proc = subprocess.Popen(
        [sys.executable, str(ECHO_HTTP)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None
        yield int(proc.stdout.readline())
    finally:
        assert proc.stdin is not None
        proc.stdin.close()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def leak_classes(port: int) -> dict[str, tuple[dict[str, Any], list[str]]]:
    """name -> (server entry, the strings that must never show)."""
    base = f"http://127.0.0.1:{port}/mcp"
    quick = {"protocol": "legacy", "restart": {"max_restarts": 1, "backoff": {"initial": 0.1}}}
    return {
        "bearer_token": (
            {"url": base, "headers": {"Authorization": "Bearer tok-SENTINEL-literal"}, **quick},
            ["tok-SENTINEL-literal"],
        ),
        "query_value": (
            {"url": f"{base}?api_key=query-SENTINEL-literal&region=eu", **quick},
            ["query-SENTINEL-literal"],
        ),
        "url_userinfo": (
            {"url": f"http://app-user:pw-SENTINEL-literal@127.0.0.1:{port}/mcp", **quick},
            ["pw-SENTINEL-literal", _basic("app-user", "pw-SENTINEL-literal")],
        ),
        "expanded_query_and_header": (
            {
                "url": f"{base}?api_key=${{API_KEY}}&status=401",
                "headers": {"X-Api-Key": "${API_KEY}"},
                **quick,
            },
            [ENVIRON["API_KEY"]],
        ),
        "expanded_args": (
            {
                "command": sys.executable,
                "args": [
                    str(ECHO_ARGS),
                    "--api-key",
                    "${API_KEY}",
                    "postgresql://app:${DB_PASSWORD}@db.internal/app",
                ],
                "env": {"ECHO_PIN": "4821", "ECHO_TOKEN": "env-SENTINEL-literal"},
                **quick,
            },
            [ENVIRON["DB_PASSWORD"], ENVIRON["API_KEY"], "env-SENTINEL-literal", "4821"],
        ),
    }


def _config(tmp_path: Path, servers: dict[str, Any]) -> str:
    path = tmp_path / "mcp.json"
    path.write_text(json.dumps({"mcpServers": servers}))
    return str(path)


def _env() -> dict[str, str]:
    return {**cli_env(), **ENVIRON}


def _assert_clean(text: str, secrets: list[str]) -> None:
    for secret in secrets:
        if len(secret) >= 8:
            assert secret not in text
        else:  # short values are masked as whole words (a timestamp may hold "4821")
            assert not re.search(rf"(?<![A-Za-z0-9]){re.escape(secret)}(?![A-Za-z0-9])", text)


@pytest.mark.parametrize(
    "leak",
    ["bearer_token", "query_value", "url_userinfo", "expanded_query_and_header", "expanded_args"],
)
def test_check_json_and_debug_logs_show_no_secret(leak: str, port: int, tmp_path: Path) -> None:
    entry, secrets = leak_classes(port)[leak]
    config = _config(tmp_path, {"srv": entry})
    done = subprocess.run(
        [sys.executable, "-m", "mcpvisor", "--log-level", "debug", "check", "--json", config],
        capture_output=True,
        text=True,
        timeout=120,
        env=_env(),
        stdin=subprocess.DEVNULL,
    )
    report = json.loads(done.stdout.splitlines()[-1])
    (row,) = report["servers"]
    # The server really did refuse and say why: the echo reached the report, masked.
    assert row["state"] != "active"
    assert row["error"]
    if leak != "expanded_query_and_header":  # a 401 carries no body text to the client
        assert "***" in row["error"] or "bad configuration" in done.stderr
    assert "HTTP Request" in done.stderr or leak == "expanded_args"
    _assert_clean(done.stdout + done.stderr, secrets)


def test_run_json_events_and_logs_show_no_secret(port: int, tmp_path: Path) -> None:
    classes = leak_classes(port)
    config = _config(tmp_path, {name: entry for name, (entry, _) in classes.items()})
    secrets = [s for _, found in classes.values() for s in found]
    proc = subprocess.Popen(
        [sys.executable, "-m", "mcpvisor", "--log-level", "debug", "run", "--json", config],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        env=_env(),
    )
    watchdog = threading.Timer(120, proc.kill)
    watchdog.start()
    lines: list[str] = []
    try:
        assert proc.stdout is not None
        dropped: set[str] = set()
        for line in proc.stdout:
            lines.append(line)
            record = json.loads(line)
            if record.get("type") == "event" and record["new"] == "dropped":
                dropped.add(record["server"])
            if dropped == set(classes):
                break
        assert dropped == set(classes), "the run ended before every server dropped"
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        watchdog.cancel()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    events = [json.loads(line) for line in lines if json.loads(line).get("type") == "event"]
    assert any(e["cause"] and "***" in e["cause"] for e in events)
    _assert_clean("".join(lines) + out + err, secrets)


async def test_status_events_and_errors_show_no_secret(port: int, tmp_path: Path) -> None:
    classes = leak_classes(port)
    raw = {"mcpServers": {name: entry for name, (entry, _) in classes.items()}}
    spec = mv.load_config(raw, environ=ENVIRON)
    secrets = [s for _, found in classes.values() for s in found]
    _assert_clean(repr(spec) + str(spec), secrets)

    supervisor = mv.Supervisor(spec)
    seen: list[str] = []
    with trio.fail_after(60):
        async with supervisor.subscribe() as events, trio.open_nursery() as nursery:
            client = await nursery.start(supervisor.run)
            async for event in events:
                seen.append(repr(event) + str(event.cause))
                states = client.status().servers
                if all(s.state is mv.ServerState.DROPPED for s in states.values()):
                    break
            status = client.status()
            await supervisor.aclose()
    errors = [s.last_error or "" for s in status.servers.values()]
    assert all(errors)
    assert any("***" in e for e in errors)
    _assert_clean("".join(seen) + "".join(errors) + json.dumps(status.to_dict()), secrets)

    required = {"bearer": {**classes["bearer_token"][0], "required": True}}
    with pytest.raises(mv.RequiredServerError) as info:
        async with mv.open_supervisor(mv.load_config({"mcpServers": required})):
            pass
    assert "token ***" in str(info.value)
    _assert_clean(str(info.value) + repr(info.value), classes["bearer_token"][1])
