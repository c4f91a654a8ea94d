"""Each way a real MCP server misbehaves is contained: a typed error or DROPPED, never more.

Every test supervises the bad server next to a healthy one, makes the bad one misbehave, and
then calls the healthy one; an autouse fixture checks that no process outlives the test.
"""

from __future__ import annotations

import os
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
import trio
from mcp.shared.exceptions import MCPError

import mcpvisor as mv
from tests.conftest import RAW_SERVER, SERVERS, live_descendants, pid_alive
from tests.supervisor.support import state_is, until

BAD_SERVER = SERVERS / "bad_server.py"

TIMEOUTS = mv.Timeouts(connect=10, initialize=20, request=20, shutdown=1, probe_interval=None)
ONCE = mv.RestartPolicy(max_restarts=1, within=600, backoff=mv.Backoff(initial=0.05, jitter=0))
"""One restart, then DROPPED: enough to see both recovery and giving up."""


def bad(*flags: str, **kwargs: Any) -> mv.StdioSpec:
    kwargs.setdefault("timeouts", TIMEOUTS)
    kwargs.setdefault("restart", ONCE)
    return mv.StdioSpec(
        name="bad", command=sys.executable, args=(str(BAD_SERVER), *flags), **kwargs
    )


GOOD = mv.StdioSpec(name="good", command=sys.executable, args=(str(RAW_SERVER),), timeouts=TIMEOUTS)


@pytest.fixture(autouse=True)
def no_process_outlives_the_test() -> Iterator[None]:
    before = set(live_descendants())
    yield
    leaked = {pid: cmd for pid, cmd in live_descendants().items() if pid not in before}
    assert leaked == {}


@asynccontextmanager
async def beside_a_healthy_server(spec: mv.StdioSpec) -> AsyncIterator[mv.SupervisorClient]:
    async with mv.open_supervisor(mv.SupervisorSpec(servers=[spec, GOOD])) as client:
        yield client
        await good_still_serves(client)


async def good_still_serves(client: mv.SupervisorClient) -> None:
    assert client.status().servers["good"].state is mv.ServerState.ACTIVE
    assert client.status().servers["good"].restarts == 0
    with trio.fail_after(20):
        result = await client.call_tool("good", "echo", {"text": "still here"}, timeout=10)
    assert result.content[0].text == "still here"  # type: ignore[union-attr]
    assert {t.server for t in await client.list_tools()} >= {"good"}


def text_of(result: Any) -> str:
    text: str = result.content[0].text
    return text


async def dead(pid: int) -> None:
    """Wait (bounded) until ``pid`` has exited: a pidfd turns readable when it dies."""
    try:
        pidfd = os.pidfd_open(pid)
    except ProcessLookupError:
        return
    try:
        with trio.fail_after(20):
            await trio.lowlevel.wait_readable(pidfd)
    finally:
        os.close(pidfd)


def restarted(name: str, restarts: int) -> Any:
    return lambda s: (
        s.servers[name].state is mv.ServerState.ACTIVE and s.servers[name].restarts == restarts
    )


async def ends_dropped(client: mv.SupervisorClient) -> mv.ServerStatus:
    status = (await until(client, state_is("bad", mv.ServerState.DROPPED))).servers["bad"]
    assert status.restarts == ONCE.max_restarts
    with pytest.raises(mv.ServerUnavailableError):
        await client.call_tool("bad", "echo", {"text": "x"})
    assert {t.server for t in await client.list_tools()} == {"good"}
    return status


# -- never becomes ready --------------------------------------------------------------------


async def test_a_banner_on_stdout_at_start_is_skipped() -> None:
    async with beside_a_healthy_server(bad("--garbage-at-start")) as client:
        await until(client, state_is("bad", mv.ServerState.ACTIVE))
        assert text_of(await client.call_tool("bad", "echo", {"text": "up"})) == "up"
        assert client.status().servers["bad"].restarts == 0


async def test_a_server_that_never_answers_initialize_is_dropped() -> None:
    quick = mv.Timeouts(connect=0.25, initialize=0.25, request=5, shutdown=1, probe_interval=None)
    async with beside_a_healthy_server(bad("--no-initialize", timeouts=quick)) as client:
        status = await ends_dropped(client)
        assert "did not finish within" in (status.last_error or "")


async def test_a_server_silent_after_initialize_is_dropped() -> None:
    quick = mv.Timeouts(connect=0.25, initialize=0.25, request=5, shutdown=1, probe_interval=None)
    spec = bad("--mute-after-initialize", timeouts=quick)
    async with beside_a_healthy_server(spec) as client:
        status = await ends_dropped(client)
        assert "did not finish within" in (status.last_error or "")


@pytest.mark.parametrize("code", [0, 1])
async def test_a_server_that_exits_at_once_is_dropped(code: int) -> None:
    async with beside_a_healthy_server(bad("--exit-at-start", str(code))) as client:
        status = await ends_dropped(client)
        assert f"exited with code {code}" in (status.last_error or "")


async def test_grandchildren_of_a_server_that_exits_at_once_are_killed() -> None:
    async with beside_a_healthy_server(bad("--grandchildren-then-exit", "3")) as client:
        status = await ends_dropped(client)
        assert "exited with code 0" in (status.last_error or "")
        sleepers = [cmd for cmd in live_descendants().values() if "sleep(600)" in cmd]
        assert sleepers == []


# -- misbehaves once serving ------------------------------------------------------------------


async def test_garbage_mid_session_is_skipped_and_the_server_stays_up() -> None:
    async with beside_a_healthy_server(bad()) as client:
        assert text_of(await client.call_tool("bad", "garbage", {})) == "after garbage"
        assert text_of(await client.call_tool("bad", "echo", {"text": "still"})) == "still"
        assert client.status().servers["bad"].restarts == 0


async def test_partial_json_times_out_and_the_next_answer_still_arrives() -> None:
    async with beside_a_healthy_server(bad()) as client:
        with pytest.raises(mv.RequestTimeoutError):
            await client.call_tool("bad", "partial", {}, timeout=0.5)
        # The next answer lands on the half-written line, and is found at its end.
        assert text_of(await client.call_tool("bad", "echo", {"text": "x"})) == "x"
        assert client.status().servers["bad"].restarts == 0


async def test_a_response_with_the_wrong_id_times_out_and_the_server_stays_up() -> None:
    async with beside_a_healthy_server(bad()) as client:
        with pytest.raises(mv.RequestTimeoutError):
            await client.call_tool("bad", "wrong_id", {}, timeout=0.5)
        assert text_of(await client.call_tool("bad", "echo", {"text": "ok"})) == "ok"
        assert client.status().servers["bad"].restarts == 0


async def test_a_server_that_goes_silent_is_found_by_probes_and_restarted() -> None:
    probed = mv.Timeouts(
        connect=10, initialize=20, request=20, shutdown=1,
        probe_interval=0.2, probe_timeout=0.3, probe_misses=2,
    )  # fmt: skip
    async with beside_a_healthy_server(bad(timeouts=probed)) as client:
        pid = client.status().servers["bad"].pid
        assert pid is not None
        assert text_of(await client.call_tool("bad", "mute", {})) == "going quiet"
        # In flight when the probes give up: interrupted at once, not left to its timeout.
        with pytest.raises(mv.RequestInterruptedError):
            await client.call_tool("bad", "echo", {"text": "anyone?"}, timeout=30)
        status = await until(client, restarted("bad", 1))
        assert "health probes failed" in (status.servers["bad"].last_error or "")
        await dead(pid)


async def test_a_server_that_closes_stdout_but_keeps_running_is_restarted() -> None:
    async with beside_a_healthy_server(bad()) as client:
        pid = client.status().servers["bad"].pid
        assert pid is not None
        with pytest.raises(mv.RequestInterruptedError):
            await client.call_tool("bad", "close_stdout", {})
        status = await until(client, restarted("bad", 1))
        assert "closed its stdout" in (status.servers["bad"].last_error or "")
        # The replacement may start while the old session is still being torn down.
        await dead(pid)
        assert not pid_alive(pid)


async def test_a_server_that_ignores_sigterm_is_killed() -> None:
    spec = bad("--ignore-sigterm", "--linger")
    async with beside_a_healthy_server(spec) as client:
        first = client.status().servers["bad"].pid
        assert first is not None
        await client.stop("bad")
        await dead(first)
        await client.revive("bad")
        await until(client, state_is("bad", mv.ServerState.ACTIVE))
        second = client.status().servers["bad"].pid
        assert second is not None and second != first
    assert not pid_alive(second)


async def test_grandchildren_die_with_a_server_that_exits() -> None:
    async with beside_a_healthy_server(bad()) as client:
        grandchildren = [
            int(text_of(await client.call_tool("bad", "grandchild", {}))) for _ in range(3)
        ]
        assert all(pid_alive(pid) for pid in grandchildren)
        with pytest.raises(mv.RequestInterruptedError):
            await client.call_tool("bad", "exit", {"code": 0})
        await until(client, restarted("bad", 1))
        for pid in grandchildren:
            await dead(pid)
        assert not any(pid_alive(pid) for pid in grandchildren)


async def test_a_grandchild_in_its_own_session_dies_with_a_server_that_is_stopped() -> None:
    async with beside_a_healthy_server(bad()) as client:
        grandchild = int(text_of(await client.call_tool("bad", "detached_grandchild", {})))
        assert pid_alive(grandchild)
        await client.restart("bad")
        await until(client, state_is("bad", mv.ServerState.ACTIVE))
        await dead(grandchild)
        grandchild = int(text_of(await client.call_tool("bad", "detached_grandchild", {})))
    await dead(grandchild)


# -- too much of something --------------------------------------------------------------------


async def test_a_50_mb_result_arrives_and_does_not_hold_up_the_others() -> None:
    async with beside_a_healthy_server(bad()) as client:
        results: list[Any] = []

        async def fetch() -> None:
            results.append(await client.call_tool("bad", "big", {"mb": 50}, timeout=120))

        async with trio.open_nursery() as nursery:
            nursery.start_soon(fetch)
            await good_still_serves(client)
        assert len(text_of(results[0])) == 50 * 1024 * 1024
        assert client.status().servers["bad"].restarts == 0


async def test_a_result_over_the_message_limit_fails_only_its_call() -> None:
    async with beside_a_healthy_server(bad(max_message_bytes=4 * 1024 * 1024)) as client:
        with pytest.raises(MCPError) as caught:
            await client.call_tool("bad", "big", {"mb": 8}, timeout=120)
        assert "max_message_bytes" in caught.value.error.message
        assert text_of(await client.call_tool("bad", "echo", {"text": "x"})) == "x"
        assert client.status().servers["bad"].restarts == 0


@pytest.mark.parametrize(("lines", "length"), [(100_000, 100), (1, 20_000_000)])
async def test_a_stderr_flood_is_absorbed(lines: int, length: int) -> None:
    async with beside_a_healthy_server(bad()) as client:
        result = await client.call_tool("bad", "stderr", {"lines": lines, "length": length})
        assert text_of(result) == "written"
        assert client.status().servers["bad"].restarts == 0


@pytest.mark.parametrize("kind", ["log", "progress", "tools"])
async def test_a_notification_flood_is_absorbed(kind: str) -> None:
    async with beside_a_healthy_server(bad()) as client:
        tools = client.status().servers["bad"].tools
        result = await client.call_tool("bad", "flood", {"count": 10_000, "kind": kind})
        assert text_of(result) == "flooded 10000"
        assert text_of(await client.call_tool("bad", "echo", {"text": "after"})) == "after"
        status = client.status().servers["bad"]
        assert (status.state, status.restarts, status.tools) == (mv.ServerState.ACTIVE, 0, tools)
