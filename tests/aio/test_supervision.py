"""Supervision stays live while the host loop is blocked; shutdown and errors are clean."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest
from aio_support import (
    RECORDING_SERVER,
    RUNNERS,
    Leftovers,
    gather_pid,
    recording_spec,
    run,
)

import mcpvisor as mv
import mcpvisor.aio
from mcpvisor.demo import broken_spec


def test_a_server_killed_while_the_host_loop_is_blocked_is_back_when_it_returns(
    tmp_path: Path,
) -> None:
    spec = mv.SupervisorSpec(servers=[recording_spec(tmp_path / "record")])

    async def main() -> None:
        async with mcpvisor.aio.open_supervisor(spec) as client:
            pid = await gather_pid(client)
            os.kill(pid, signal.SIGKILL)
            # Block the loop (a CPU-bound handler would): only the status snapshot, a plain
            # read, is looked at; the loop does not run until the server is back.
            deadline = time.monotonic() + 30
            while True:
                server = client.status().servers["rec"]
                if server.state is mv.ServerState.ACTIVE and server.restarts == 1:
                    break
                assert time.monotonic() < deadline, f"not restarted while blocked: {server}"
                time.sleep(0.05)  # noqa: ASYNC251 - blocking the loop is the point
            assert server.pid not in (None, pid)
            assert server.last_error is not None
            assert await gather_pid(client) == server.pid

    run(main())


@pytest.mark.parametrize("runner", RUNNERS)
def test_leaving_with_calls_in_flight_fails_them_and_leaves_nothing(
    tmp_path: Path, runner: mcpvisor.aio.Runner, procs: Any
) -> None:
    spec = mv.SupervisorSpec(
        servers=[recording_spec(tmp_path / "record"), recording_spec(tmp_path / "r2", "two")]
    )

    async def main() -> None:
        left = Leftovers()
        calls: list[asyncio.Task[Any]] = []
        async with mcpvisor.aio.open_supervisor(spec, runner=runner) as client:
            pids = [await gather_pid(client), await gather_pid(client, "two")]
            arrived = asyncio.Semaphore(0)

            async def on_progress(*_: Any) -> None:
                arrived.release()

            for server in ("rec", "two", "rec"):
                calls.append(
                    asyncio.create_task(client.call_tool(server, "hang", {}, progress=on_progress))
                )
            for _ in calls:
                await arrived.acquire()
        outcomes = await asyncio.gather(*calls, return_exceptions=True)
        for result in outcomes:
            assert isinstance(result, mv.RequestInterruptedError | mv.ServerUnavailableError)
        assert client._core.portal.pending == 0
        await left.check(procs, pids)

    run(main())


def test_a_second_cancellation_during_exit_still_tears_everything_down(
    tmp_path: Path, procs: Any
) -> None:
    spec = mv.SupervisorSpec(servers=[recording_spec(tmp_path / "record")])

    async def main() -> None:
        left = Leftovers()
        up = asyncio.Event()
        pids: list[int] = []

        async def host() -> None:
            async with mcpvisor.aio.open_supervisor(spec) as client:
                pids.append(await gather_pid(client))
                up.set()
                await asyncio.Event().wait()

        task = asyncio.create_task(host())
        await up.wait()
        task.cancel()
        for _ in range(5):
            await asyncio.sleep(0)
            task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await left.check(procs, pids)

    run(main())


def test_a_cancelled_startup_tears_down_what_started(tmp_path: Path, procs: Any) -> None:
    slow = mv.SupervisorSpec(
        servers=[
            recording_spec(tmp_path / "record"),
            broken_spec(
                required=True, restart=mv.RestartPolicy(backoff=mv.Backoff(initial=30, max=30))
            ),
        ]
    )

    async def main() -> None:
        left = Leftovers()
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(3):
                async with mcpvisor.aio.open_supervisor(slow):
                    raise AssertionError("a required server that cannot start blocks startup")
        await left.check(procs, [])
        assert not procs.live_descendants()

    run(main())


def test_a_required_server_that_cannot_start_raises_out_of_entering(procs: Any) -> None:
    spec = mv.SupervisorSpec(
        servers=[broken_spec(required=True, restart=mv.RestartPolicy(max_restarts=0))]
    )

    async def main() -> None:
        left = Leftovers()
        with pytest.raises(mv.RequiredServerError) as error:
            async with mcpvisor.aio.open_supervisor(spec):
                raise AssertionError("unreachable")
        assert error.value.server == "broken"
        await left.check(procs, [])

    run(main())


def test_a_required_server_dropped_later_cancels_the_block_and_raises(tmp_path: Path) -> None:
    spec = mv.SupervisorSpec(servers=[recording_spec(tmp_path / "record", required=True)])

    async def main() -> None:
        reached = False
        with pytest.raises(mv.RequiredServerError) as error:
            async with mcpvisor.aio.open_supervisor(spec) as client:
                await client.drop("rec")
                await asyncio.sleep(60)
                reached = True
        assert not reached
        assert error.value.server == "rec"
        assert asyncio.current_task().cancelling() == 0  # type: ignore[union-attr]

    run(main())


def test_subscribers_have_bounded_buffers_with_a_drop_marker(tmp_path: Path) -> None:
    spec = mv.SupervisorSpec(servers=[recording_spec(tmp_path / "record")])

    async def main() -> None:
        async with mcpvisor.aio.open_supervisor(spec) as client:
            async with client.subscribe(buffer=2) as small, client.subscribe() as full:
                for _ in range(2):
                    await client.restart("rec")
                    async for event in full:
                        if event.new is mv.ServerState.ACTIVE:  # type: ignore[union-attr]
                            break
                assert small.pending == 2
                first = await anext(small)
                assert first == mv.EventsLost(2)
                rest = [await anext(small), await anext(small)]
                assert [e.new for e in rest] == [mv.ServerState.STARTING, mv.ServerState.ACTIVE]  # type: ignore[union-attr]
            with pytest.raises(StopAsyncIteration):
                await anext(small)

    run(main())


HOST = textwrap.dedent(
    """
    import asyncio, signal, sys
    import mcpvisor as mv, mcpvisor.aio

    # Started from a shell's background job (`nohup pytest &`), it inherits SIGINT ignored,
    # and Python then gives it no KeyboardInterrupt: a Ctrl-C host has the default handler.
    signal.signal(signal.SIGINT, signal.default_int_handler)

    # They linger after stdin's end: teardown waits half of `shutdown` before SIGTERM.
    spec = mv.SupervisorSpec(servers=[
        mv.StdioSpec(name=n, command=sys.executable, args=[sys.argv[1], sys.argv[2], "--linger"],
                     timeouts=mv.Timeouts(shutdown=1))
        for n in ("a", "b")
    ])

    async def main():
        async with mcpvisor.aio.open_supervisor(spec) as client:
            for n in ("a", "b"):
                print((await client.call_tool(n, "pid", {})).content[0].text, flush=True)
            print("ready", flush=True)
            await asyncio.Event().wait()

    asyncio.run(main())
    """
)


@pytest.mark.parametrize("presses", [1, 2])
def test_ctrl_c_of_an_asyncio_run_host_tears_the_servers_down(
    tmp_path: Path, presses: int, procs: Any
) -> None:
    host = subprocess.Popen(
        [sys.executable, "-c", HOST, str(RECORDING_SERVER), str(tmp_path / "record")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert host.stdout is not None
    pids = [int(host.stdout.readline()), int(host.stdout.readline())]
    assert host.stdout.readline().strip() == "ready"
    for _ in range(presses):
        host.send_signal(signal.SIGINT)
        time.sleep(0.05)
    _, err = host.communicate(timeout=60)
    assert "KeyboardInterrupt" in err
    assert "Traceback" in err  # asyncio.run re-raises it, as without mcpvisor
    # The servers ignore the end of stdin: only mcpvisor's teardown, finished before the
    # host exited, can have ended them.
    for pid in pids:
        assert not procs.pid_alive(pid), f"server {pid} outlived its host"
