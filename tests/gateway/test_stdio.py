"""``mcpvisor serve CONFIG --stdio`` as a subprocess, driven by the SDK's own stdio client."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import trio
from mcp import Client, StdioServerParameters
from mcp.shared.exceptions import MCPError

import mcpvisor as mv
from tests.gateway.support import (
    GATEWAY_TIMEOUT,
    Notices,
    config_file,
    downstream,
    raw,
    wait_for,
)

ERAS = ["legacy", "2026-07-28"]


def serve(config: Path) -> StdioServerParameters:
    return StdioServerParameters(
        command=sys.executable,
        args=["-m", "mcpvisor", "serve", str(config), "--stdio"],
        env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])},
    )


@pytest.mark.parametrize("mode", ERAS)
async def test_serves_one_client_over_stdio(mode: str, tmp_path: Path) -> None:
    marker = tmp_path / "cancelled"
    spec = mv.SupervisorSpec(servers=[downstream(marker=marker), raw()])
    gateway = {"servers": {"d": {"tools": {"allow": ["add", "slow", "block", "grow"]}}}}
    config = config_file(tmp_path, spec, gateway)
    with trio.fail_after(GATEWAY_TIMEOUT * 2):
        async with Client(serve(config), mode=mode) as client:
            names = {t.name for t in (await client.list_tools()).tools}
            assert {"d__add", "d__slow", "d__block", "r__echo"} <= names
            assert "d__secret" not in names and "d__echo_meta" not in names
            with pytest.raises(MCPError, match="Unknown tool"):
                await client.call_tool("d__secret", {})
            result = await client.call_tool("d__add", {"a": 20, "b": 22})
            assert result.structured_content == {"result": 42}

            seen: list[float] = []

            async def progress(value: float, total: float | None, message: str | None) -> None:
                seen.append(value)

            await client.call_tool("d__slow", {"steps": 2}, progress_callback=progress)
            assert seen == [1, 2]

            arrived = trio.Event()

            async def started(value: float, total: float | None, message: str | None) -> None:
                arrived.set()

            async with trio.open_nursery() as nursery:

                async def call() -> None:
                    await client.call_tool("d__block", {"tag": "stdio"}, progress_callback=started)

                nursery.start_soon(call)
                await arrived.wait()
                nursery.cancel_scope.cancel()
            await wait_for(lambda: marker.exists() and "cancelled stdio" in marker.read_text())


async def test_sigkill_downstream_over_stdio_out_and_back_in(tmp_path: Path) -> None:
    # The raw server writes its pid nowhere, so the test kills the gateway's only child
    # that runs it: found through /proc as a child of the gateway's child.
    spec = mv.SupervisorSpec(servers=[raw("r"), raw("s")])
    config = config_file(tmp_path, spec)
    notices = Notices()
    with trio.fail_after(GATEWAY_TIMEOUT * 2):
        async with Client(serve(config), mode="legacy", message_handler=notices) as client:
            assert "r__echo" in {t.name for t in (await client.list_tools()).tools}
            pid = _grandchild_running("raw_server.py")
            os.kill(pid, signal.SIGKILL)
            await notices.wait_for("notifications/tools/list_changed", 2)
            result = await client.call_tool("r__echo", {"text": "back"})
            assert result.content[0].text == "back"  # type: ignore[union-attr]
            names = {t.name for t in (await client.list_tools(cache_mode="refresh")).tools}
            assert "r__echo" in names and "s__echo" in names


def _grandchild_running(script: str) -> int:
    from tests.conftest import live_descendants

    found = [pid for pid, cmd in live_descendants().items() if script in cmd]
    assert found, f"no process runs {script}"
    return min(found)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=lambda s: s.name)
def test_a_signal_stops_the_gateway_while_its_host_keeps_stdin_open(
    sig: signal.Signals, tmp_path: Path, procs: Any
) -> None:
    config = config_file(tmp_path, mv.SupervisorSpec(servers=[raw()]))
    before = set(procs.live_descendants())
    params = serve(config)
    log = tmp_path / "stderr"
    with log.open("wb") as stderr:
        gateway = subprocess.Popen(
            [params.command, *params.args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=stderr,
            env=params.env,
        )
    try:
        assert gateway.stdin is not None and gateway.stdout is not None
        hello = {"protocolVersion": "2025-11-25", "capabilities": {}}
        hello["clientInfo"] = {"name": "host", "version": "1"}
        request = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": hello}
        gateway.stdin.write(json.dumps(request).encode() + b"\n")
        gateway.stdin.flush()
        assert json.loads(gateway.stdout.readline())["id"] == 1  # serving, stdin still open
        started = set(procs.live_descendants()) - before - {gateway.pid}
        assert started, "the gateway started no server"
        gateway.send_signal(sig)
        # The host keeps stdin open (communicate() would close it): only the signal ends it.
        assert gateway.wait(timeout=GATEWAY_TIMEOUT) == 0, log.read_text()
        assert [pid for pid in started if procs.pid_alive(pid)] == []
    finally:
        if gateway.poll() is None:
            gateway.kill()
            gateway.wait()
        for pipe in (gateway.stdin, gateway.stdout):
            if pipe is not None:
                pipe.close()
