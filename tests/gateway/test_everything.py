"""The gateway in front of the real npm ``server-everything`` (installed through npx, cached)."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import pytest
import trio
from mcp import Client

import mcpvisor as mv
from tests.gateway.support import (
    GATEWAY_TIMEOUT,
    Notices,
    config_file,
    http_gateway,
    raw,
    wait_for,
)
from tests.gateway.test_http import stream_open
from tests.gateway.test_stdio import serve

PACKAGE = "@modelcontextprotocol/server-everything@2026.8.31"


@pytest.fixture(scope="module")
def everything() -> mv.StdioSpec:
    try:
        done = subprocess.run(
            ["npx", "-y", "-p", PACKAGE, "-c", "true"], capture_output=True, timeout=600
        )
    except (FileNotFoundError, subprocess.TimeoutExpired) as error:
        pytest.skip(f"npx cannot install {PACKAGE}: {error}")
    if done.returncode != 0:
        pytest.skip(f"the npm registry is unreachable for {PACKAGE}: {done.stderr[-300:]!r}")
    return mv.StdioSpec(
        name="everything",
        command="npx",
        args=["-y", PACKAGE],
        timeouts=mv.Timeouts(connect=120, initialize=120),
    )


@pytest.mark.timeout(900)  # a first run installs the package from npm
@pytest.mark.parametrize("mode", ["legacy", "2026-07-28"])
async def test_server_everything_through_the_gateway(everything: mv.StdioSpec, mode: str) -> None:
    spec = mv.SupervisorSpec(servers=[everything, raw()])
    async with http_gateway(spec) as gw, Client(gw.mcp_url, mode=mode) as client:
        names = {t.name for t in (await client.list_tools()).tools}
        assert {"everything__echo", "everything__get-sum", "r__echo"} <= names
        summed = await client.call_tool("everything__get-sum", {"a": 2, "b": 3})
        assert "5" in summed.content[0].text  # type: ignore[union-attr]
        seen: list[float] = []

        async def progress(value: float, total: float | None, message: str | None) -> None:
            seen.append(value)

        await client.call_tool(
            "everything__trigger-long-running-operation",
            {"duration": 1, "steps": 3},
            progress_callback=progress,
        )
        assert len(seen) == 3 and seen == sorted(seen)
        uri = "demo://resource/static/document/architecture.md"
        assert uri in {str(r.uri) for r in (await client.list_resources()).resources}
        read = await client.read_resource(uri)
        assert read.contents and str(read.contents[0].uri) == uri
        prompt = await client.get_prompt("everything__simple-prompt")
        assert prompt.messages


@pytest.mark.timeout(900)
async def test_sigkill_of_server_everything_is_told_out_and_back_in(
    everything: mv.StdioSpec,
) -> None:
    spec = mv.SupervisorSpec(servers=[everything, raw()])
    async with http_gateway(spec) as gw:
        notices = Notices()
        async with Client(gw.mcp_url, mode="legacy", message_handler=notices) as client:
            await stream_open(gw, notices)
            pid = gw.client.status().servers["everything"].pid
            assert pid is not None
            os.kill(pid, signal.SIGKILL)
            await notices.wait_for("notifications/tools/list_changed", 1)
            await wait_for(
                lambda: gw.client.status().servers["everything"].state is mv.ServerState.ACTIVE
            )
            await notices.wait_for("notifications/tools/list_changed", 2)
            with trio.fail_after(GATEWAY_TIMEOUT):
                names = {t.name for t in (await client.list_tools(cache_mode="refresh")).tools}
            assert "everything__echo" in names


@pytest.mark.timeout(900)
@pytest.mark.parametrize("mode", ["legacy", "2026-07-28"])
async def test_server_everything_through_a_stdio_gateway(
    everything: mv.StdioSpec, mode: str, tmp_path: Path
) -> None:
    config = config_file(tmp_path, mv.SupervisorSpec(servers=[everything, raw()]))
    with trio.fail_after(GATEWAY_TIMEOUT * 4):
        async with Client(serve(config), mode=mode) as client:
            names = {t.name for t in (await client.list_tools()).tools}
            assert {"everything__echo", "everything__get-sum", "r__echo"} <= names
            summed = await client.call_tool("everything__get-sum", {"a": 20, "b": 22})
            assert "42" in summed.content[0].text  # type: ignore[union-attr]
            seen: list[float] = []

            async def progress(value: float, total: float | None, message: str | None) -> None:
                seen.append(value)

            await client.call_tool(
                "everything__trigger-long-running-operation",
                {"duration": 1, "steps": 2},
                progress_callback=progress,
            )
            assert len(seen) == 2 and seen == sorted(seen)
            echoed = await client.call_tool("r__echo", {"text": "raw"})
            assert echoed.content[0].text == "raw"  # type: ignore[union-attr]
