"""The supervisor with real stdio subprocesses: crashes, budgets, escalation, scale, leaks."""

from __future__ import annotations

import logging
import os
import signal
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import structlog.testing
import trio

import mcpvisor as mv
from tests.conftest import RAW_SERVER
from tests.supervisor.support import QUICK, state_is, until

TIMEOUTS = mv.Timeouts(connect=10, initialize=20, request=20, shutdown=2, probe_interval=None)


def raw(name: str, *flags: str, script: Path = RAW_SERVER, **kwargs: object) -> mv.StdioSpec:
    kwargs.setdefault("timeouts", TIMEOUTS)
    kwargs.setdefault("restart", QUICK)
    return mv.StdioSpec(
        name=name,
        command=sys.executable,
        args=(str(script), *flags),
        **kwargs,  # type: ignore[arg-type]
    )


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return not Path(f"/proc/{pid}/stat").read_text().split(") ")[1].startswith("Z")


async def test_kill_9_fails_restarts_and_the_next_call_succeeds() -> None:
    async with mv.open_supervisor(mv.SupervisorSpec(servers=[raw("files")])) as client:
        first = client.status().servers["files"].pid
        assert first is not None
        async with client.subscribe() as events:
            os.kill(first, signal.SIGKILL)
            path = []
            with trio.fail_after(60):
                async for event in events:
                    assert isinstance(event, mv.LifecycleEvent)
                    path.append((event.new, event.reason))
                    if event.new is mv.ServerState.ACTIVE:
                        break
        assert path == [
            (mv.ServerState.FAILED, "crashed"),
            (mv.ServerState.STARTING, "backoff"),
            (mv.ServerState.ACTIVE, "ready"),
        ]
        status = client.status().servers["files"]
        assert status.pid not in (None, first)
        assert status.restarts == 1
        assert "SIGKILL" in (status.last_error or "")
        result = await client.call_tool("files__echo", {"text": "back"})
        assert result.content[0].text == "back"  # type: ignore[union-attr]
    assert not alive(first)


async def test_a_caller_told_of_a_crash_never_sees_the_server_still_active() -> None:
    # The owner hears of a lost link before any call it failed is told so: a host that reads
    # the status on RequestInterruptedError sees the crash. Each round used to see ACTIVE and
    # the dead pid about half the time.
    often = mv.RestartPolicy(max_restarts=100, backoff=mv.Backoff(initial=0, max=0, jitter=0))
    spec = mv.SupervisorSpec(servers=[raw("files", restart=often)])
    async with mv.open_supervisor(spec) as client:
        for _ in range(10):
            await until(client, state_is("files", mv.ServerState.ACTIVE))
            pid = client.status().servers["files"].pid
            with pytest.raises(mv.RequestInterruptedError):
                await client.call_tool("files", "exit", {"code": 1})
            after = client.status().servers["files"]
            assert (after.state, after.pid) != (mv.ServerState.ACTIVE, pid)


async def test_a_clean_exit_of_a_transient_server_stops_it() -> None:
    spec = mv.SupervisorSpec(
        servers=[raw("once", restart=mv.RestartPolicy(restart="transient")), raw("other")]
    )
    async with mv.open_supervisor(spec) as client:
        with pytest.raises(mv.RequestInterruptedError):
            await client.call_tool("once", "exit", {"code": 0})
        status = await until(client, state_is("once", mv.ServerState.STOPPED))
        assert status.servers["once"].restarts == 0
        with pytest.raises(mv.RequestInterruptedError):
            await client.call_tool("other", "exit", {"code": 3})
        status = await until(
            client,
            lambda s: (
                s.servers["other"].restarts == 1
                and s.servers["other"].state is mv.ServerState.ACTIVE
            ),
        )
        assert status.servers["other"].last_error == "the server process exited with code 3"


async def test_a_bogus_command_ends_dropped_while_others_serve() -> None:
    spec = mv.SupervisorSpec(
        servers=[
            mv.StdioSpec(name="bogus", command="/definitely/not/a/server", restart=QUICK),
            raw("good"),
        ]
    )
    async with mv.open_supervisor(spec) as client:
        status = await until(client, state_is("bogus", mv.ServerState.DROPPED))
        assert status.servers["bogus"].restarts == QUICK.max_restarts
        assert status.servers["good"].state is mv.ServerState.ACTIVE
        assert (await client.call_tool("good__echo", {"text": "ok"})).content[0].text == "ok"  # type: ignore[union-attr]
        assert client.status().to_dict()["status"] == "degraded"


async def test_a_required_bogus_server_fails_open_supervisor() -> None:
    spec = mv.SupervisorSpec(
        servers=[
            raw("good"),
            raw("core", "--exit-at-start", "1", required=True),
        ]
    )
    with pytest.raises(mv.RequiredServerError) as info:
        async with mv.open_supervisor(spec):
            pytest.fail("must not get here")
    assert info.value.server == "core"


async def test_twenty_servers_start_concurrently(tmp_path: Path) -> None:
    barrier = Path(__file__).parent / "barrier_server.py"
    count = 20
    spec = mv.SupervisorSpec(
        servers=[
            raw(
                f"s{i}",
                str(tmp_path),
                str(count),
                script=barrier,
                restart=mv.RestartPolicy(max_restarts=0),
            )
            for i in range(count)
        ]
    )
    async with mv.open_supervisor(spec) as client:
        status = client.status()
        assert status.active == [f"s{i}" for i in range(count)]
        pids = [s.pid for s in status.servers.values()]
        assert len(set(pids)) == count
    assert not any(alive(pid) for pid in pids if pid is not None)


async def test_a_stalled_subscriber_does_not_hold_up_a_restart() -> None:
    spec = mv.SupervisorSpec(servers=[raw("files")])
    async with mv.open_supervisor(spec) as client, client.subscribe(buffer=1) as stalled:
        pid = client.status().servers["files"].pid
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        await until(
            client,
            lambda s: (
                s.servers["files"].state is mv.ServerState.ACTIVE
                and s.servers["files"].restarts == 1
            ),
        )
        assert await stalled.__anext__() == mv.EventsLost(2)
        last = await stalled.__anext__()
        assert isinstance(last, mv.LifecycleEvent) and last.new is mv.ServerState.ACTIVE


async def test_no_process_remains_after_the_block() -> None:
    spec = mv.SupervisorSpec(servers=[raw("a"), raw("b", "--ignore-sigterm")])
    async with mv.open_supervisor(spec) as client:
        pids = [s.pid for s in client.status().servers.values()]
        grandchild = int(
            (await client.call_tool("a__grandchild", {})).content[0].text  # type: ignore[union-attr]
        )
    assert all(pid is not None and not alive(pid) for pid in pids)
    assert not alive(grandchild)


async def test_logs_events_and_status_carry_no_secret_a_server_prints() -> None:
    secret = "sk-SECRET-7f3a9c2e51"
    code = (
        "import os, sys; print('token is', os.environ['API_KEY'], file=sys.stderr); "
        "sys.stderr.flush(); sys.exit(3)"
    )
    spec = mv.SupervisorSpec(
        servers=[
            mv.StdioSpec(
                name="leaky",
                command=sys.executable,
                args=("-c", code),
                env={"API_KEY": secret},
                restart=mv.RestartPolicy(max_restarts=0),
                timeouts=TIMEOUTS,
            )
        ]
    )
    supervisor = mv.Supervisor(spec)
    seen: list[object] = []
    with structlog.testing.capture_logs() as logs:
        async with supervisor.subscribe() as events, trio.open_nursery() as nursery:
            client = await nursery.start(supervisor.run)
            status = client.status()
            await client.aclose()
            seen.extend([event async for event in events])
    # The secret did pass through: the server printed it, and it was masked on the way.
    assert any("token is" in str(entry.get("line", "")) for entry in logs)
    assert status.servers["leaky"].state is mv.ServerState.DROPPED
    everything = [*map(repr, logs), *map(repr, seen), repr(status.to_dict())]
    assert [text for text in everything if secret in text] == []
    assert len(seen) >= 2 and status.servers["leaky"].last_error


async def test_a_timed_out_call_reports_the_callers_timeout_and_the_server_stays_up() -> None:
    # One serving task: the call after the timeout runs where the timed-out one was cancelled.
    spec = mv.SupervisorSpec(servers=[raw("files", max_concurrency=1)])
    with structlog.testing.capture_logs() as logs:
        async with mv.open_supervisor(spec) as client:
            with pytest.raises(mv.RequestTimeoutError) as caught:
                await client.call_tool("files", "hang", {}, timeout=0.5)
            assert caught.value.timeout == 0.5 and caught.value.server == "files"
            result = await client.call_tool("files", "echo", {"text": "still here"})
            assert result.content[0].text == "still here"  # type: ignore[union-attr]
            assert client.status().servers["files"].restarts == 0
    # The server was told (the raw server reports each notifications/cancelled on stderr,
    # all of which is logged by the time the supervisor has closed).
    stderr = [str(entry.get("line", "")) for entry in logs if entry["event"] == "server.stderr"]
    assert len([line for line in stderr if line.startswith("cancelled ")]) == 1


async def test_a_call_queued_behind_a_busy_worker_still_ends_at_its_deadline() -> None:
    spec = raw("files", max_concurrency=1)
    async with mv.open_supervisor(mv.SupervisorSpec(servers=[spec])) as client:
        errors: list[BaseException] = []
        reached = trio.Event()

        async def progress(done: float, total: float | None, message: str | None) -> None:
            reached.set()

        async def hang() -> None:
            try:
                await client.call_tool("files", "hang", {}, timeout=20, progress=progress)
            except mv.RequestInterruptedError as error:
                errors.append(error)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(hang)
            with trio.fail_after(30):
                await reached.wait()
            # The only serving task is busy with hang(): this call waits in the queue.
            # Not 20 s later, when hang() would free the serving task.
            with trio.fail_after(10), pytest.raises(mv.RequestTimeoutError) as caught:
                await client.call_tool("files", "echo", {"text": "queued"}, timeout=0.5)
            assert caught.value.timeout == 0.5
            await client.restart("files")
        assert len(errors) == 1


BAD_SERVER = RAW_SERVER.parent / "bad_server.py"


async def test_a_restarted_server_never_runs_twice_at_once() -> None:
    # It ignores SIGTERM and lingers after stdin closes, so its teardown takes all of
    # `shutdown`: the new process must not start before the old one is gone.
    slow = mv.Timeouts(connect=10, initialize=20, request=20, shutdown=1, probe_interval=None)
    spec = mv.SupervisorSpec(
        servers=[raw("slow", "--linger", "--ignore-sigterm", script=BAD_SERVER, timeouts=slow)]
    )
    async with mv.open_supervisor(spec) as client:
        old = client.status().servers["slow"].pid
        assert old is not None and alive(old)
        await client.restart("slow")
        status = await until(
            client,
            lambda s: (
                s.servers["slow"].state is mv.ServerState.ACTIVE
                and s.servers["slow"].pid not in (None, old)
            ),
        )
        assert not alive(old)
        assert status.servers["slow"].pid is not None and alive(status.servers["slow"].pid)


async def test_a_crashed_server_restarts_without_waiting_for_its_teardown() -> None:
    # Its process is dead, so nothing can clash: the replacement spawns while it tears down.
    spec = mv.SupervisorSpec(servers=[raw("files")])

    def active_with_new_pid(old: int | None) -> Callable[[mv.SupervisorStatus], bool]:
        def ready(status: mv.SupervisorStatus) -> bool:
            server = status.servers["files"]
            return server.state is mv.ServerState.ACTIVE and server.pid not in (None, old)

        return ready

    with structlog.testing.capture_logs() as logs:
        async with mv.open_supervisor(spec) as client:
            first = client.status().servers["files"].pid
            assert first is not None
            os.kill(first, signal.SIGKILL)
            second = (await until(client, active_with_new_pid(first))).servers["files"].pid
            assert not [entry for entry in logs if entry["event"] == "server.waiting_for_previous"]
            await client.restart("files")
            await until(client, active_with_new_pid(second))
    waits = [entry for entry in logs if entry["event"] == "server.waiting_for_previous"]
    # The manual restart of the live server waited for its old session.
    assert len(waits) == 1


def lingering(name: str, *flags: str, shutdown: float = 1.0, **timeouts: Any) -> mv.StdioSpec:
    """A server that ignores SIGTERM and lingers after stdin closes: its teardown takes all
    of ``shutdown``, so a replacement that does not wait for it overlaps it."""
    bound = mv.Timeouts(
        connect=10,
        initialize=20,
        request=20,
        shutdown=shutdown,
        **{"probe_interval": None, **timeouts},
    )
    return raw(name, "--linger", "--ignore-sigterm", *flags, script=BAD_SERVER, timeouts=bound)


@asynccontextmanager
async def lingering_supervisor(shutdown: float) -> AsyncIterator[tuple[mv.SupervisorClient, int]]:
    """A supervisor running ``lingering("s", shutdown=shutdown)``, and that server's pid."""
    spec = mv.SupervisorSpec(servers=[lingering("s", shutdown=shutdown)])
    async with mv.open_supervisor(spec) as client:
        old = client.status().servers["s"].pid
        assert old is not None
        yield client, old


def replaced(name: str, old: int) -> Callable[[mv.SupervisorStatus], bool]:
    def ready(status: mv.SupervisorStatus) -> bool:
        server = status.servers[name]
        return server.state is mv.ServerState.ACTIVE and server.pid not in (None, old)

    return ready


@pytest.mark.parametrize("how", ["probes fail", "stdout closed"])
async def test_a_server_lost_while_still_running_is_replaced_only_once_it_is_gone(how: str) -> None:
    # A hung server, or one that closed its stdout, still holds its port, lock or files:
    # its crash is reported at once, but the new process waits for the old one's teardown.
    if how == "probes fail":
        spec = lingering("s", "--ping-pattern", "d", probe_interval=0.2, probe_timeout=0.2)
    else:
        spec = lingering("s")
    async with (
        mv.open_supervisor(mv.SupervisorSpec(servers=[spec])) as client,
        client.subscribe() as events,
    ):
        old = client.status().servers["s"].pid
        assert old is not None
        if how == "stdout closed":
            with pytest.raises(mv.RequestInterruptedError):
                await client.call_tool("s", "close_stdout", {})
        with trio.fail_after(30):
            async for event in events:
                if isinstance(event, mv.LifecycleEvent) and event.new is mv.ServerState.FAILED:
                    break
        assert alive(old)
        await until(client, replaced("s", old))
        assert not alive(old)


async def stop_and_revive_once_waiting(client: mv.SupervisorClient, logs: list[Any]) -> None:
    """Once the new session of ``s`` waits for its old one, stop and revive ``s``."""
    await until(client, lambda _: any(e["event"] == "server.waiting_for_previous" for e in logs))
    await client.stop("s")
    await client.revive("s")


async def test_a_replacement_stopped_while_it_waits_passes_the_wait_on() -> None:
    # Long enough a teardown that the third session's own start cannot outlast it.
    async with lingering_supervisor(shutdown=3.0) as (client, old):
        with structlog.testing.capture_logs() as logs:
            await client.restart("s")
            await stop_and_revive_once_waiting(client, logs)
            await until(client, replaced("s", old))
        assert not alive(old)


async def test_a_reload_that_shortens_shutdown_waits_out_the_old_bound() -> None:
    # The old session tears down within its own (longer) bound; the new one waits for it.
    async with lingering_supervisor(shutdown=3.0) as (client, old):
        report = await client.reconfigure(mv.SupervisorSpec(servers=[lingering("s", shutdown=0.2)]))
        assert report.restarted == ("s",)
        await until(client, replaced("s", old))
        assert not alive(old)


async def test_a_shortened_reload_then_a_restart_still_waits_out_the_first_bound() -> None:
    # The reload's session waits for the old one's 3 s bound; stopped meanwhile, it hands
    # that wait on, not one bounded by its own 0.2 s.
    async with lingering_supervisor(shutdown=3.0) as (client, old):
        with structlog.testing.capture_logs() as logs:
            async with trio.open_nursery() as nursery:
                shorter = mv.SupervisorSpec(servers=[lingering("s", shutdown=0.2)])
                nursery.start_soon(client.reconfigure, shorter)
                await stop_and_revive_once_waiting(client, logs)
            await until(client, replaced("s", old))
        assert not alive(old)
        assert not [e for e in logs if e["event"] == "server.previous_overstayed"]


@pytest.mark.parametrize("kind", ["plain function", "returns an awaitable"])
async def test_a_progress_callback_need_not_be_async(
    kind: str, caplog: pytest.LogCaptureFixture
) -> None:
    # The SDK awaits what it is given: a plain function ran, then the SDK logged a TypeError
    # with its traceback at every notification.
    reached = trio.Event()
    heard: list[tuple[float, float | None, str | None]] = []

    def plain(done: float, total: float | None, message: str | None) -> None:
        heard.append((done, total, message))
        reached.set()

    async def later(done: float, total: float | None, message: str | None) -> None:
        plain(done, total, message)

    progress: Any = plain if kind == "plain function" else lambda *args: later(*args)
    async with (
        mv.open_supervisor(mv.SupervisorSpec(servers=[raw("files")])) as client,
        trio.open_nursery() as nursery,
    ):
        nursery.start_soon(partial(client.call_tool, "files", "hang", {}, progress=progress))
        with trio.fail_after(30):
            await reached.wait()
        nursery.cancel_scope.cancel()
    assert heard[0] == (0, None, None)
    assert not [record for record in caplog.records if record.levelno >= logging.ERROR]


async def test_a_progress_callback_that_is_not_callable_is_refused() -> None:
    async with mv.open_supervisor(mv.SupervisorSpec(servers=[raw("files")])) as client:
        with pytest.raises(mv.UsageError) as caught:
            await client.call_tool("files", "echo", {"text": "x"}, progress="loud")  # type: ignore[arg-type]
    assert "progress" in str(caught.value) and "must be a callable" in str(caught.value)
