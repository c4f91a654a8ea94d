"""The worker over HTTP: an ``MCPServer`` subprocess on 127.0.0.1, killed and restarted."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import mcp_types as types
import pytest
import structlog
import trio
from worker_helpers import FAST, http_server, running

from mcpvisor.specs import HttpSpec, SseSpec
from mcpvisor.workers import Envelope, RequestInterruptedError, StartError, run_worker

TOKEN = "Bearer header-secret-value"


def sum_of(result: Any) -> str:
    assert isinstance(result, types.CallToolResult)
    content = result.content[0]
    assert isinstance(content, types.TextContent)
    return content.text


async def test_streamable_http_call_then_kill_mid_call(mcp_server: Path) -> None:
    arrived = trio.Event()

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        arrived.set()

    with structlog.testing.capture_logs() as logs:
        async with http_server(mcp_server, "streamable-http") as server:
            spec = HttpSpec(
                name="web", url=server.url, headers={"Authorization": TOKEN}, timeouts=FAST
            )
            async with running(spec) as worker:
                assert worker.ready is not None and worker.ready.pid is None
                result = await worker.call("call_tool", name="add", arguments={"a": 1, "b": 2})
                assert sum_of(result) == "3"
                slow = worker.submit(
                    "call_tool", on_progress, name="sleep", arguments={"seconds": 60}
                )
                await arrived.wait()
                await server.kill()
                with pytest.raises(RequestInterruptedError) as caught:
                    await slow.reply.wait()
                exit = await worker.wait_exit()
    assert exit.kind == "abnormal"
    assert caught.value.cause == exit.cause
    assert "header-secret-value" not in repr(logs) + exit.cause


async def test_a_restarted_server_reports_the_stale_session(mcp_server: Path) -> None:
    async with http_server(mcp_server, "streamable-http") as server:
        spec = HttpSpec(name="web", url=server.url, timeouts=FAST, protocol="legacy")
        # The handshake era has sessions; 2026-07-28 sessions are stateless and just carry on.
        async with running(spec) as worker:
            assert worker.ready is not None
            assert worker.ready.protocol_version == "2025-11-25"
            await server.kill()
            await server.start(server.port)
            with pytest.raises(RequestInterruptedError):
                await worker.call("call_tool", name="add", arguments={"a": 1, "b": 2})
            exit = await worker.wait_exit()
    assert exit.kind == "abnormal"
    assert "no longer knows this session" in exit.cause


def _unused_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def test_a_refused_connection_is_a_connect_start_error() -> None:
    spec = HttpSpec(name="web", url=f"http://127.0.0.1:{_unused_port()}/mcp", timeouts=FAST)
    _send, receive = trio.open_memory_channel[Envelope](1)
    with pytest.raises(StartError) as caught:
        await run_worker(spec, receive)
    assert caught.value.kind == "connect"


async def test_sse_call_works(mcp_server: Path) -> None:
    async with http_server(mcp_server, "sse") as server:
        spec = SseSpec(name="legacy-web", url=server.url, timeouts=FAST)
        async with running(spec) as worker:
            assert worker.ready is not None
            assert "add" in {tool.name for tool in worker.ready.catalog.tools}
            result = await worker.call("call_tool", name="add", arguments={"a": 20, "b": 22})
            assert sum_of(result) == "42"
            assert await worker.call("probe") is None
    assert (await worker.wait_exit()).kind == "stopped"


async def test_a_streamable_http_session_goes_through_the_environments_proxy(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # httpx honours HTTP(S)_PROXY only for a client given no transport of its own: the
    # transport that watches for a refused GET must not cost a host its proxy.
    listener = trio.socket.socket()
    await listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    proxy = f"http://127.0.0.1:{listener.getsockname()[1]}"
    for name in ("http_proxy", "HTTP_PROXY"):
        monkeypatch.setenv(name, proxy)
    for name in ("no_proxy", "NO_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
    seen: list[bytes] = []

    async def answer_as_a_proxy() -> None:
        connection, _ = await listener.accept()
        with connection:
            seen.append(await connection.recv(65536))
            await connection.send(b"HTTP/1.1 502 Bad Gateway\r\ncontent-length: 0\r\n\r\n")

    spec = HttpSpec(name="web", url="http://mcp.invalid/mcp", timeouts=FAST, protocol="legacy")
    _send, receive = trio.open_memory_channel[Envelope](1)
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(answer_as_a_proxy)
            with pytest.raises(StartError):
                await run_worker(spec, receive)
            nursery.cancel_scope.cancel()
    listener.close()
    assert seen and seen[0].startswith(b"POST http://mcp.invalid/mcp HTTP/1.1")
