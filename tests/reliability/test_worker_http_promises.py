"""The worker against streamable-HTTP servers that lose sessions, sit behind failing proxies,
refuse credentials or take many calls at once. Each test fails on a worker without the
behaviour it names (#12 items 1, 2 and 10).
"""

from __future__ import annotations

import os
import signal
from typing import Any

import attrs
import mcp_types as types
import pytest
import structlog
import trio

from mcpvisor.specs import HttpSpec, Timeouts
from mcpvisor.workers import (
    Envelope,
    RequestInterruptedError,
    StartError,
    WorkerHooks,
    run_worker,
)
from mcpvisor.workers.remote import HttpStatusLog
from tests.conftest import MCP_SERVER, SERVERS
from tests.workers.worker_helpers import FAST, HttpServer, http_server, raw_http_server, running

RAW_HTTP = SERVERS / "raw_http_server.py"
TOKEN = "Bearer sk-live-header-secret-0042"

PROBING = Timeouts(
    connect=10,
    initialize=20,
    request=20,
    shutdown=2,
    probe_interval=0.05,
    probe_timeout=5,
    probe_misses=2,
)


def spec_for(server: HttpServer, timeouts: Timeouts = FAST, **kwargs: Any) -> HttpSpec:
    kwargs.setdefault("protocol", "legacy")
    return HttpSpec(name="web", url=server.url, timeouts=timeouts, **kwargs)


def text_of(result: Any) -> str:
    assert isinstance(result, types.CallToolResult)
    content = result.content[0]
    assert isinstance(content, types.TextContent)
    return content.text


async def until_count(server: HttpServer, method: str, count: int) -> None:
    """Wait (bounded) until the server has received ``count`` ``method`` requests."""
    with trio.fail_after(30):
        while await server.count(method) < count:  # noqa: ASYNC110 - the count is remote
            await trio.sleep(0.02)


@pytest.mark.parametrize(
    ("mode", "said"),
    [
        ("gone400", "No valid session ID"),
        ("gone400_no_id", "No valid session ID"),
        ("gone404", "Session not found"),
    ],
)
async def test_a_lost_session_in_any_form_ends_the_session_at_the_next_call(
    mode: str, said: str
) -> None:
    async with raw_http_server(RAW_HTTP) as server, running(spec_for(server)) as worker:
        assert text_of(await worker.call("call_tool", name="echo", arguments={"text": "a"}))
        await server.control(mode)
        with trio.fail_after(30), pytest.raises(RequestInterruptedError) as caught:
            await worker.call("call_tool", name="echo", arguments={"text": "b"})
        exit = await worker.wait_exit()
    assert exit.kind == "abnormal"
    assert said in exit.cause and "no longer knows this session" in exit.cause
    assert caught.value.cause == exit.cause


@pytest.mark.parametrize("mode", ["gone400", "gone400_no_id", "gone404"])
async def test_a_lost_session_is_noticed_by_the_probes_while_idle(mode: str) -> None:
    async with raw_http_server(RAW_HTTP) as server, running(spec_for(server, PROBING)) as worker:
        await server.control(mode)
        with trio.fail_after(30):
            exit = await worker.wait_exit()
    assert exit.kind == "abnormal"
    assert "no longer knows this session" in exit.cause


async def test_a_probe_no_answer_is_a_miss_at_its_timeout_on_a_wedged_server(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Cancelling a ping makes the SDK send notifications/cancelled first, shielded for up to
    # five seconds; on a stopped server the first one's POST never ends, so the second
    # cancel's write blocks until the SDK gives it up, and a miss counted after the cancel
    # came only then. Counted at its deadline, the loss is in long before that.
    timeouts = attrs.evolve(PROBING, probe_interval=0.2, probe_timeout=0.3)
    lost = trio.Event()
    gave_up_first: list[bool] = []

    def on_lost(cause: str, kind: str, gone: bool) -> None:
        gave_up_first.append(any("gave up" in r.getMessage() for r in caplog.records))
        lost.set()

    async with raw_http_server(RAW_HTTP) as server:
        assert server.process is not None
        async with running(
            spec_for(server, timeouts), hooks=WorkerHooks(on_lost=on_lost)
        ) as worker:
            os.kill(server.process.pid, signal.SIGSTOP)
            try:
                with trio.fail_after(60):
                    await lost.wait()
            finally:
                os.kill(server.process.pid, signal.SIGCONT)
            exit = await worker.wait_exit()
    assert exit.cause == "2 consecutive health probes failed: no answer within 0.3s"
    assert gave_up_first == [False]


@pytest.mark.parametrize("status", [502, 503, 401, 403, 404])
async def test_http_failures_are_probe_misses_that_fail_the_server(status: int) -> None:
    async with raw_http_server(RAW_HTTP) as server, running(spec_for(server, PROBING)) as worker:
        await server.control(f"status:{status}")
        with trio.fail_after(30):
            exit = await worker.wait_exit()
    assert exit.kind == "abnormal"
    assert f"HTTP {status}" in exit.cause
    if status != 404:  # a 404 once a session exists says the session is gone
        assert exit.cause.startswith("2 consecutive health probes failed")


async def test_a_json_rpc_error_to_a_probe_is_proof_of_life() -> None:
    with structlog.testing.capture_logs() as logs:
        async with (
            raw_http_server(RAW_HTTP) as server,
            running(spec_for(server, PROBING)) as worker,
        ):
            await server.control("ping_error")
            before = await server.count("ping")
            await until_count(server, "ping", before + 8)
            assert not worker.exited.is_set()
    assert [entry for entry in logs if entry["event"] == "server.probe_missed"] == []


async def test_probe_misses_count_only_when_consecutive() -> None:
    with structlog.testing.capture_logs() as logs:
        async with (
            raw_http_server(RAW_HTTP) as server,
            running(spec_for(server, PROBING)) as worker,
        ):
            await server.control("alternate")
            before = await server.count("ping")
            await until_count(server, "ping", before + 10)
            # Every other probe fails, and never two in a row: the server stays up.
            assert not worker.exited.is_set()
            await server.control("status:502")
            with trio.fail_after(30):
                exit = await worker.wait_exit()
    misses = [entry["misses"] for entry in logs if entry["event"] == "server.probe_missed"]
    assert misses.count(1) >= 4 and misses[-2:] == [1, 2]
    assert "HTTP 502" in exit.cause


@pytest.mark.parametrize(
    ("status", "reason"), [(401, "Unauthorized"), (500, "Internal Server Error")]
)
async def test_a_failed_start_names_the_http_status(status: int, reason: str) -> None:
    async with raw_http_server(RAW_HTTP, "--echo-auth") as server:
        await server.control(f"status:{status}")
        _send, receive = trio.open_memory_channel[Envelope](1)
        spec = spec_for(server, headers={"Authorization": TOKEN}, protocol="auto")
        with structlog.testing.capture_logs() as logs, pytest.raises(StartError) as caught:
            with trio.fail_after(60):
                await run_worker(spec, receive)
    assert caught.value.kind == "connect"
    assert f"the server answered HTTP {status} {reason}" in caught.value.cause
    assert "sk-live-header-secret" not in repr(logs) + str(caught.value)


@pytest.mark.parametrize("mode", ["gone400", "gone400_no_id"])
async def test_a_session_error_that_echoes_the_token_is_redacted(mode: str) -> None:
    with structlog.testing.capture_logs() as logs:
        async with raw_http_server(RAW_HTTP, "--echo-auth") as server:
            spec = spec_for(server, headers={"Authorization": TOKEN})
            async with running(spec) as worker:
                await server.control(mode)
                with trio.fail_after(30), pytest.raises(RequestInterruptedError) as caught:
                    await worker.call("call_tool", name="echo", arguments={"text": "b"})
                exit = await worker.wait_exit()
    assert "***" in exit.cause
    everything = repr(logs) + exit.cause + str(caught.value)
    assert "sk-live-header-secret" not in everything


async def test_150_concurrent_calls_fit_the_connection_pool() -> None:
    # Calls outlast the pool timeout (connect): with httpx's default pool of 100, the 50 calls
    # waiting for a connection would hit PoolTimeout and take the session with them.
    timeouts = Timeouts(connect=1, initialize=30, request=60, shutdown=2, probe_interval=None)
    async with http_server(MCP_SERVER, "streamable-http") as server:
        spec = HttpSpec(name="web", url=server.url, timeouts=timeouts, max_concurrency=150)
        async with running(spec) as worker:
            envelopes = [
                worker.submit("call_tool", name="sleep", arguments={"seconds": 3})
                for _ in range(150)
            ]
            with trio.fail_after(60):
                results = [await envelope.reply.wait() for envelope in envelopes]
            assert not worker.exited.is_set()
    assert [text_of(result) for result in results] == ["slept"] * 150


async def test_a_server_that_dies_while_idle_is_noticed_without_probes() -> None:
    # The SDK reopens the dropped GET stream once and gives up quietly when that is refused;
    # without probes, nothing else would ever look.
    quiet = Timeouts(connect=10, initialize=20, request=20, shutdown=2, probe_interval=None)
    async with (
        http_server(MCP_SERVER, "streamable-http") as server,
        running(spec_for(server, quiet)) as worker,
    ):
        assert text_of(await worker.call("call_tool", name="add", arguments={"a": 1, "b": 2}))
        await server.kill()
        with trio.fail_after(20):
            exit = await worker.wait_exit()
    assert exit.kind == "abnormal"
    assert exit.cause.startswith("the server stopped accepting connections")


def test_what_a_server_said_of_a_gone_session_stays_out_of_the_logs_repr() -> None:
    # It is kept unredacted (the worker redacts it for the cause), so no repr may show it.
    log = HttpStatusLog(failures=1, last="HTTP 400 Bad Request")
    log.session_gone = f"No valid session ID provided ({TOKEN})"
    assert "sk-live-header-secret" not in repr(log)
    assert "HTTP 400" in repr(log)
