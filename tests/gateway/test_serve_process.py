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


async def _serve(nursery: trio.Nursery, command: list[str]) -> tuple[trio.Process, str]:
    """Start ``command`` (a ``serve --http`` on port 0); return it and the URL it serves."""
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])}
    process: trio.Process = await nursery.start(
        partial(trio.run_process, command, env=env, stderr=subprocess.PIPE, check=False)
    )
    assert process.stderr is not None
    seen = b""
    with trio.fail_after(GATEWAY_TIMEOUT * 2):
        while b"serving http://" not in seen:
            chunk = await process.stderr.receive_some(4096)
            assert chunk, seen.decode(errors="replace")
            seen += chunk
    return process, seen.decode().split("serving ", 1)[1].split()[0]


def _alive(pid: int) -> bool:
    return Path(f"/proc/{pid}").exists() and "zombie" not in Path(f"/proc/{pid}/status").read_text()


async def test_serve_reloads_on_sighup_serves_metrics_and_stops_cleanly(tmp_path: Path) -> None:
    config = config_file(tmp_path, mv.SupervisorSpec(servers=[raw("a")]))
    command = [sys.executable, "-m", "mcpvisor", "serve", str(config), "--http", "127.0.0.1:0"]
    async with trio.open_nursery() as nursery:
        process, url = await _serve(nursery, command)
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


async def test_serve_watch_restarts_only_the_changed_server_and_keeps_calls(
    tmp_path: Path,
) -> None:
    """#19's acceptance through a real process and file: one server added, one removed, one
    changed; only the changed one restarts and a call in flight to an unchanged one completes."""
    from mcp import Client

    from tests.gateway.support import downstream

    def spec(*servers: mv.StdioSpec) -> mv.SupervisorSpec:
        return mv.SupervisorSpec(servers=list(servers))

    config = config_file(tmp_path, spec(downstream("d"), raw("a"), raw("c")))
    command = [sys.executable, "-m", "mcpvisor", "serve", str(config), "--watch"]
    command += ["--http", "127.0.0.1:0"]
    release = tmp_path / "release"
    async with trio.open_nursery() as nursery:
        process, url = await _serve(nursery, command)
        base = url.removesuffix("/mcp")
        before = (await _status(base))["servers"]
        assert isinstance(before, dict) and set(before) == {"d", "a", "c"}

        answers: list[str] = []
        in_flight = trio.Event()

        async def progress(value: float, total: float | None, message: str | None) -> None:
            in_flight.set()

        async with Client(url) as client:

            async def call() -> None:
                result = await client.call_tool(
                    "d__gate", {"path": str(release)}, progress_callback=progress
                )
                content = result.content[0]
                answers.append(getattr(content, "text", ""))

            with trio.fail_after(GATEWAY_TIMEOUT * 2):
                async with trio.open_nursery() as calls:
                    calls.start_soon(call)
                    await in_flight.wait()
                    changed = raw("a", env={"CHANGED": "1"})
                    config_file(tmp_path, spec(downstream("d"), changed, raw("b")))
                    while True:
                        after = (await _status(base))["servers"]
                        assert isinstance(after, dict)
                        if set(after) == {"d", "a", "b"} and all(
                            s["state"] == "active" for s in after.values()
                        ):
                            break
                        await trio.sleep(0.1)
                    release.write_text("go")
        assert answers == ["released"]
        assert after["d"]["pid"] == before["d"]["pid"]
        assert after["a"]["pid"] != before["a"]["pid"]
        process.send_signal(signal.SIGTERM)
        with trio.fail_after(GATEWAY_TIMEOUT * 2):
            await process.wait()
    assert process.returncode == 0
    for status in (*before.values(), *after.values()):
        assert not _alive(status["pid"])
