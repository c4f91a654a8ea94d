"""``mcpvisor serve --http`` as a real process: metrics, a SIGHUP reload, a clean SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.request
from functools import partial
from pathlib import Path

import trio

import mcpvisor as mv
from tests.gateway.support import GATEWAY_TIMEOUT, config_file, raw


def _get(url: str) -> tuple[int, str]:
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.status, response.read().decode()


async def _status(base: str) -> dict[str, object]:
    _, body = await trio.to_thread.run_sync(_get, f"{base}/status")
    loaded: dict[str, object] = json.loads(body)
    return loaded


def _alive(pid: int) -> bool:
    return Path(f"/proc/{pid}").exists() and "zombie" not in Path(f"/proc/{pid}/status").read_text()


async def test_serve_reloads_on_sighup_serves_metrics_and_stops_cleanly(tmp_path: Path) -> None:
    config = config_file(tmp_path, mv.SupervisorSpec(servers=[raw("a")]))
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])}
    command = [sys.executable, "-m", "mcpvisor", "serve", str(config), "--http", "127.0.0.1:0"]
    async with trio.open_nursery() as nursery:
        process = await nursery.start(
            partial(trio.run_process, command, env=env, stderr=subprocess.PIPE, check=False)
        )
        assert process.stderr is not None
        seen = b""
        with trio.fail_after(GATEWAY_TIMEOUT * 2):
            while b"serving http://" not in seen:
                chunk = await process.stderr.receive_some(4096)
                assert chunk, seen.decode(errors="replace")
                seen += chunk
        url = seen.decode().split("serving ", 1)[1].split()[0]
        base = url.removesuffix("/mcp")

        code, text = await trio.to_thread.run_sync(_get, f"{base}/metrics")
        assert code == 200
        assert 'mcpvisor_server_up{server="a"} 1.0' in text

        first = await _status(base)
        servers = first["servers"]
        assert isinstance(servers, dict)
        pid_a = servers["a"]["pid"]
        assert set(servers) == {"a"} and isinstance(pid_a, int)

        config_file(tmp_path, mv.SupervisorSpec(servers=[raw("a"), raw("b")]))
        process.send_signal(signal.SIGHUP)
        with trio.fail_after(GATEWAY_TIMEOUT * 2):
            while True:
                servers = (await _status(base))["servers"]
                assert isinstance(servers, dict)
                if servers.get("b", {}).get("state") == "active":
                    break
                await trio.sleep(0.1)
        assert servers["a"]["pid"] == pid_a  # unchanged: not restarted
        assert process.returncode is None  # SIGHUP reloaded, it did not stop
        pid_b = servers["b"]["pid"]

        process.send_signal(signal.SIGTERM)
        with trio.fail_after(GATEWAY_TIMEOUT * 2):
            await process.wait()
    assert process.returncode == 0
    assert not _alive(pid_a) and not _alive(pid_b)
