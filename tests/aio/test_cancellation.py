"""Cancellation crosses the border both ways, and the caller's context goes with a request."""

from __future__ import annotations

import asyncio
import contextvars
import logging
from pathlib import Path
from typing import Any

import pytest
import trio
from aio_support import LOOPS, RUNNERS, eventually, recorded, recording_spec, run

import mcpvisor as mv
import mcpvisor.aio

caller = contextvars.ContextVar[str]("caller", default="nobody")


@pytest.mark.parametrize("loop", LOOPS)
@pytest.mark.parametrize("runner", RUNNERS)
def test_a_cancelled_asyncio_caller_cancels_the_call_on_the_server(
    tmp_path: Path, runner: mcpvisor.aio.Runner, loop: str
) -> None:
    record = tmp_path / "record"
    spec = mv.SupervisorSpec(servers=[recording_spec(record)])

    async def main() -> None:
        async with mcpvisor.aio.open_supervisor(spec, runner=runner) as client:
            arrived = asyncio.Event()
            progress: list[tuple[float, float | None, str | None]] = []

            async def on_progress(value: float, total: float | None, message: str | None) -> None:
                progress.append((value, total, message))
                arrived.set()

            call = asyncio.create_task(client.call_tool("rec", "hang", {}, progress=on_progress))
            await arrived.wait()
            assert progress == [(1.0, 2.0, "arrived")]
            call.cancel()
            with pytest.raises(asyncio.CancelledError):
                await call
            # Returned only once the Trio side had finished: nothing is left in flight.
            assert client._core.portal.pending == 0
            await eventually(lambda: len(recorded(record)) == 1, "the server to record it")
            assert recorded(record)[0].startswith("cancelled ")

            # asyncio.timeout is a cancellation too, and becomes the caller's TimeoutError.
            with pytest.raises(TimeoutError) as timeout:
                async with asyncio.timeout(0.2):
                    await client.call_tool("rec", "hang", {})
            assert not isinstance(timeout.value, mv.RequestTimeoutError)
            await eventually(lambda: len(recorded(record)) == 2, "the second cancellation")
            # The server is fine and serves the next call.
            assert (await client.call_tool("rec", "echo", {"text": "ok"})).content[0].text == "ok"
            assert client.status().servers["rec"].restarts == 0

    run(main(), loop)


def test_a_trio_side_timeout_is_a_request_timeout_error(tmp_path: Path) -> None:
    record = tmp_path / "record"
    spec = mv.SupervisorSpec(servers=[recording_spec(record)])

    async def main() -> None:
        async with mcpvisor.aio.open_supervisor(spec) as client:
            with pytest.raises(mv.RequestTimeoutError) as timeout:
                await client.call_tool("rec", "hang", {}, timeout=0.3)
            assert timeout.value.server == "rec"
            assert timeout.value.operation == "call_tool"
            await eventually(lambda: len(recorded(record)) == 1, "the server to record it")
            assert (await client.call_tool("rec", "echo", {"text": "ok"})).content[0].text == "ok"

    run(main())


def test_a_second_cancellation_still_waits_for_the_trio_side(tmp_path: Path) -> None:
    record = tmp_path / "record"
    spec = mv.SupervisorSpec(servers=[recording_spec(record)])

    async def main() -> None:
        async with mcpvisor.aio.open_supervisor(spec) as client:
            arrived = asyncio.Event()

            async def on_progress(*_: Any) -> None:
                arrived.set()

            call = asyncio.create_task(client.call_tool("rec", "hang", {}, progress=on_progress))
            await arrived.wait()
            call.cancel()
            await asyncio.sleep(0)
            call.cancel()
            with pytest.raises(asyncio.CancelledError):
                await call
            assert client._core.portal.pending == 0
            await eventually(lambda: len(recorded(record)) == 1, "the server to record it")

    run(main())


def test_the_callers_context_variables_reach_the_trio_task(tmp_path: Path) -> None:
    spec = mv.SupervisorSpec(servers=[recording_spec(tmp_path / "record")])

    async def main() -> None:
        async with mcpvisor.aio.open_supervisor(spec) as client:

            async def read() -> tuple[str, str]:
                await trio.lowlevel.checkpoint()
                return caller.get(), trio.lowlevel.current_task().name

            async def as_caller(name: str) -> tuple[str, str]:
                caller.set(name)
                return await client._core.portal.run(read)

            got = await asyncio.gather(as_caller("alice"), as_caller("bob"))
            assert [value for value, _ in got] == ["alice", "bob"]
            assert caller.get() == "nobody"

    run(main())


@pytest.mark.parametrize("runner", RUNNERS)
def test_a_plain_progress_function_is_called_on_the_host_loop(
    tmp_path: Path, runner: mcpvisor.aio.Runner, caplog: pytest.LogCaptureFixture
) -> None:
    # It ran, then awaiting its None failed: a TypeError and traceback logged per notice.
    spec = mv.SupervisorSpec(servers=[recording_spec(tmp_path / "record")])

    async def main() -> None:
        async with mcpvisor.aio.open_supervisor(spec, runner=runner) as client:
            arrived = asyncio.Event()
            host = asyncio.get_running_loop()
            heard: list[tuple[float, bool]] = []

            def on_progress(value: float, total: float | None, message: str | None) -> None:
                heard.append((value, asyncio.get_running_loop() is host))
                arrived.set()

            call = asyncio.create_task(client.call_tool("rec", "hang", {}, progress=on_progress))  # type: ignore[arg-type]
            await arrived.wait()
            call.cancel()
            with pytest.raises(asyncio.CancelledError):
                await call
            assert heard == [(1.0, True)]

    run(main())
    assert not [record for record in caplog.records if record.levelno >= logging.ERROR]
