"""``mcpvisor run --metrics HOST:PORT``: a real CLI process serving real scrapes."""

from __future__ import annotations

import argparse
import errno
import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import httpx2 as httpx
import pytest
import trio
from prometheus_client.parser import text_string_to_metric_families

from mcpvisor.observability._cli import metrics_address
from tests.conftest import RAW_SERVER


@pytest.mark.parametrize(
    ("text", "address"),
    [
        ("127.0.0.1:9464", ("127.0.0.1", 9464)),
        (":9464", ("127.0.0.1", 9464)),
        ("[::1]:0", ("::1", 0)),
        ("0.0.0.0:80", ("0.0.0.0", 80)),
    ],
)
def test_addresses(text: str, address: tuple[str, int]) -> None:
    assert metrics_address(text) == address


@pytest.mark.parametrize("text", ["9464", "host:", "host:port", "127.0.0.1:70000", ""])
def test_bad_addresses_are_usage_errors(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match="HOST:PORT"):
        metrics_address(text)


async def test_run_serves_metrics_until_interrupted(tmp_path: Path) -> None:
    config = tmp_path / "mcp.json"
    config.write_text(
        json.dumps(
            {"mcpServers": {"local": {"command": sys.executable, "args": [str(RAW_SERVER)]}}}
        )
    )
    process = await trio.lowlevel.open_process(
        [sys.executable, "-m", "mcpvisor", "run", str(config), "--metrics", "127.0.0.1:0"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        assert process.stderr is not None
        seen = b""
        with trio.fail_after(60):
            while b"/metrics\n" not in seen:
                chunk = await process.stderr.receive_some(4096)
                assert chunk, f"the CLI exited early: {seen!r}"
                seen += chunk
        line = next(x for x in seen.decode().splitlines() if "metrics at" in x)
        url = line.rsplit(" ", 1)[1]
        assert url.startswith("http://127.0.0.1:") and url.endswith("/metrics")
        # The endpoint starts once startup is over, so the server is ACTIVE by now.
        async with httpx.AsyncClient() as http:
            with trio.fail_after(60):
                text = (await http.get(url)).text
        assert 'mcpvisor_server_up{server="local"} 1.0' in text
        names = {f.name for f in text_string_to_metric_families(text)}
        assert {"mcpvisor_server_state", "mcpvisor_requests", "mcpvisor_health"} <= names
        process.send_signal(signal.SIGINT)
        with trio.fail_after(60):
            assert await process.wait() == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


def _config(tmp_path: Path) -> Path:
    config = tmp_path / "mcp.json"
    config.write_text(
        json.dumps(
            {"mcpServers": {"local": {"command": sys.executable, "args": [str(RAW_SERVER)]}}}
        )
    )
    return config


def test_a_taken_port_is_a_one_line_error_naming_it(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "mcpvisor",
                "run",
                str(_config(tmp_path)),
                "--metrics",
                f"127.0.0.1:{port}",
            ],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    assert done.returncode == 1
    assert done.stderr.strip().splitlines()[-1] == (
        f"mcpvisor: error: [Errno {errno.EADDRINUSE}] cannot serve metrics on "
        f"127.0.0.1:{port}: {os.strerror(errno.EADDRINUSE)}"
    )


def test_without_the_extra_the_flag_names_it(tmp_path: Path) -> None:
    code = (
        "import sys; sys.modules['prometheus_client'] = None\n"
        "from mcpvisor.cli import main\n"
        f"sys.exit(main(['run', {str(_config(tmp_path))!r}, '--metrics', '127.0.0.1:0']))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode != 0
    assert done.stderr.strip().splitlines()[-1] == (
        "mcpvisor: error: --metrics: mcpvisor.observability.prometheus needs the 'prometheus' "
        "extra: pip install 'mcpvisor[prometheus]'"
    )
