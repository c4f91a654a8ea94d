"""The worker against stdio servers that misbehave: lost answers, huge messages, stray output,
escaped daemons, a host that dies. Each test fails on a worker without the behaviour it names.
"""

from __future__ import annotations

import contextvars
import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import mcp_types as types
import pytest
import structlog
import trio
from mcp.shared.exceptions import MCPError

from mcpvisor.specs import StdioSpec, Timeouts
from mcpvisor.workers import RequestInterruptedError, WorkerHooks, process_tree
from mcpvisor.workers.stdio import sniff_id
from tests.conftest import SERVERS
from tests.workers.worker_helpers import FAST, running

BAD = SERVERS / "bad_server.py"


def bad(*flags: str, **kwargs: Any) -> StdioSpec:
    kwargs.setdefault("timeouts", FAST)
    return StdioSpec(name="bad", command=sys.executable, args=(str(BAD), *flags), **kwargs)


def text_of(result: Any) -> str:
    assert isinstance(result, types.CallToolResult)
    content = result.content[0]
    assert isinstance(content, types.TextContent)
    return content.text


async def dead(pid: int) -> None:
    """Wait (bounded) until ``pid`` has exited."""
    try:
        pidfd = os.pidfd_open(pid)
    except ProcessLookupError:
        return
    try:
        with trio.fail_after(30):
            await trio.lowlevel.wait_readable(pidfd)
    finally:
        os.close(pidfd)


# -- no lost answers (#12 item 3) ------------------------------------------------------------


async def test_an_answer_written_just_before_a_clean_exit_is_delivered() -> None:
    # The race lost a third to a half of these answers; forty in a row leave it no room.
    for _ in range(40):
        with trio.fail_after(60):
            async with running(bad()) as worker:
                unanswered = worker.submit("call_tool", name="hang")
                answer = await worker.call("call_tool", name="reply_then_exit")
                assert text_of(answer) == "answered"
                with pytest.raises(RequestInterruptedError) as caught:
                    await unanswered.reply.wait()
                exit = await worker.wait_exit()
        assert (exit.kind, exit.returncode) == ("normal", 0)
        assert caught.value.cause == "the server process exited with code 0"


async def test_through_the_handle_an_answer_before_a_clean_exit_is_delivered() -> None:
    import mcpvisor as mv

    policy = mv.RestartPolicy(max_restarts=100, within=600, backoff=mv.Backoff(initial=0, jitter=0))
    spec = mv.SupervisorSpec(servers=[bad(restart=policy)])
    async with mv.open_supervisor(spec) as client, client.subscribe() as events:
        for _ in range(20):
            pid = client.status().servers["bad"].pid
            with trio.fail_after(60):
                result = await client.call_tool("bad", "reply_then_exit", {}, timeout=30)
                assert text_of(result) == "answered"
                # The next call goes to the next session: one written to a process that is
                # exiting may have reached it, and a tool call is never retried.
                async for _event in events:
                    status = client.status().servers["bad"]
                    if status.state is mv.ServerState.ACTIVE and status.pid not in (None, pid):
                        break


# -- one message too large fails only itself (#12 item 2) ------------------------------------


@pytest.mark.parametrize("order", ["python", "ts"])
async def test_a_message_over_the_cap_fails_only_its_request(order: str) -> None:
    arrived = trio.Event()

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        arrived.set()

    with structlog.testing.capture_logs() as logs:
        async with running(bad(max_message_bytes=1024 * 1024)) as worker:
            other = worker.submit("call_tool", on_progress, name="hang")
            with trio.fail_after(30):
                await arrived.wait()
                with pytest.raises(MCPError) as caught:
                    await worker.call("call_tool", name="big", arguments={"mb": 3, "order": order})
                assert "max_message_bytes (1048576)" in caught.value.error.message
                # The server and every other call carry on.
                echoed = await worker.call("call_tool", name="echo", arguments={"text": "ok"})
                assert text_of(echoed) == "ok"
                small = await worker.call("call_tool", name="big", arguments={"mb": 0.5})
                assert len(text_of(small)) == 512 * 1024
            assert not other.reply.done
        exit = await worker.wait_exit()
    assert exit.kind == "stopped"
    [warning] = [entry for entry in logs if entry["event"] == "server.message_too_large"]
    assert warning["bytes"] > 3 * 1024 * 1024


def test_only_a_top_level_id_is_found() -> None:
    assert sniff_id(b'{"jsonrpc": "2.0", "id": 7, "result": {"x', b"") == 7
    assert sniff_id(b'{"result": {"id": 1', b'xx"}, "jsonrpc": "2.0", "id": "a-1"}\n') == "a-1"
    assert sniff_id(b'{"result": {"id": 1', b'"x", "id": 5}}}') is None
    assert sniff_id(b'{"jsonrpc": "2.0", "method": "notifications/message"', b"}") is None


# -- stray output (#12 item 9) ---------------------------------------------------------------


async def test_a_flood_of_stray_stdout_lines_is_logged_within_bounds() -> None:
    with structlog.testing.capture_logs() as logs:
        async with running(bad("--garbage-at-start")) as worker:
            for _ in range(30):
                assert text_of(await worker.call("call_tool", name="garbage")) == "after garbage"
        await worker.wait_exit()
    skipped = [entry for entry in logs if entry["event"] == "server.stdout_skipped"]
    suppressed = [e for e in logs if e["event"] == "server.stdout_skipped_suppressed"]
    assert 1 <= len(skipped) <= 31
    assert len(skipped) + sum(entry["lines"] for entry in suppressed) == 31


async def test_a_signal_reads_as_a_sentence() -> None:
    async with running(bad()) as worker:
        os.kill(worker.pid, signal.SIGKILL)
        exit = await worker.wait_exit()
    assert exit.cause == "the server process was killed by SIGKILL"


# -- the session's end is reported at once (#13 item 6) --------------------------------------


async def test_on_lost_comes_before_teardown_with_the_exit_verdict() -> None:
    lost: list[tuple[str, str, bool, bool]] = []
    holder: list[Any] = []

    def on_lost(cause: str, kind: str, gone: bool) -> None:
        lost.append((cause, kind, gone, holder[0].exited.is_set()))

    async with running(bad(), hooks=WorkerHooks(on_lost=on_lost)) as worker:
        holder.append(worker)
        os.kill(worker.pid, signal.SIGKILL)
        exit = await worker.wait_exit()
    # Killed outright: nothing of it is left to clash with a new session.
    assert lost == [(exit.cause, exit.kind, True, False)]
    assert exit.kind == "abnormal"


async def test_on_lost_says_a_server_that_closed_its_stdout_is_not_gone() -> None:
    # It still runs, and may hold what a new session needs until teardown kills it.
    lost: list[tuple[str, bool]] = []
    hooks = WorkerHooks(on_lost=lambda cause, kind, gone: lost.append((cause, gone)))
    async with running(bad(), hooks=hooks) as worker:
        worker.submit("call_tool", name="close_stdout")
        exit = await worker.wait_exit()
    assert lost == [(exit.cause, False)]


async def test_on_lost_says_a_dead_launcher_whose_child_runs_on_is_not_gone() -> None:
    # As `npm exec` killed under its node child: the server itself lives on in the group.
    # (A shell's background job reads /dev/null unless its stdin is passed on explicitly.)
    script = f"exec 3<&0; {sys.executable} {BAD} <&3 3<&- & wait"
    spec = StdioSpec(name="bad", command="sh", args=("-c", script), timeouts=FAST)
    lost: list[tuple[str, bool]] = []
    hooks = WorkerHooks(on_lost=lambda cause, kind, gone: lost.append((cause, gone)))
    async with running(spec, hooks=hooks) as worker:
        os.kill(worker.pid, signal.SIGKILL)
        exit = await worker.wait_exit()
    assert exit.cause == "the server process was killed by SIGKILL"
    assert lost == [(exit.cause, False)]


async def test_on_lost_is_not_called_when_the_owner_stops_the_worker() -> None:
    lost: list[str] = []
    async with running(bad(), hooks=WorkerHooks(on_lost=lambda c, k, g: lost.append(c))) as worker:
        pass
    assert (await worker.wait_exit()).kind == "stopped"
    assert lost == []


# -- nothing left behind (#12 item 5, #12 item 10) -------------------------------------------


async def test_a_double_forked_daemon_is_killed_at_teardown(procs: Any) -> None:
    async with running(bad()) as worker:
        daemon = int(text_of(await worker.call("call_tool", name="daemon")))
        assert procs.pid_alive(daemon)
        assert os.getsid(daemon) != os.getsid(worker.pid)
    await worker.wait_exit()
    await dead(daemon)
    assert not procs.pid_alive(daemon)


@pytest.mark.parametrize("walk", ["task files", "one scan"])
async def test_descendants_are_found_recursively(
    procs: Any, walk: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    if walk == "one scan":  # a kernel without CONFIG_PROC_CHILDREN
        monkeypatch.setattr(process_tree, "_has_children_files", lambda: False)
    elif not process_tree._has_children_files():
        pytest.skip("this kernel does not list each thread's children in /proc")
    async with running(bad()) as worker:
        chain = [
            int(pid)
            for pid in text_of(
                await worker.call("call_tool", name="chain", arguments={"depth": 4})
            ).split()
        ]
        assert len(chain) == 4 and all(procs.pid_alive(pid) for pid in chain)
    await worker.wait_exit()
    for pid in chain:
        await dead(pid)
    assert not any(procs.pid_alive(pid) for pid in chain)


async def test_a_server_without_helpers_is_torn_down_without_a_full_stat_scan(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Each full scan reads every process's stat on the host (~25 us each): a host with
    # thousands of processes would pay that at every restart, partly on the event loop.
    if not process_tree._has_children_files():
        pytest.skip("this kernel does not list each thread's children in /proc")
    scans: list[str] = []
    scan, marked = process_tree._scan, process_tree._marked

    def counted_scan() -> dict[int, tuple[bytes, int, int]]:
        scans.append("stat")
        return scan()

    def counted_marked(mark: bytes, only: tuple[int, ...] | None = None) -> list[int]:
        if only is None:
            scans.append("environ")
        return marked(mark, only)

    monkeypatch.setattr(process_tree, "_scan", counted_scan)
    monkeypatch.setattr(process_tree, "_marked", counted_marked)
    async with running(bad()) as worker:
        pass
    assert (await worker.wait_exit()).kind == "stopped"
    # Before stdin closes and after the SIGKILL: a daemon may double-fork in the grace time.
    assert scans == ["environ", "environ"]
    scans.clear()
    async with running(bad()) as worker:
        os.kill(worker.pid, signal.SIGKILL)
        assert (await worker.wait_exit()).kind == "abnormal"
    # Already dead: only the scan after the SIGKILL is left to do.
    assert scans == ["environ"]


async def test_teardown_sends_sigterm_before_sigkill(tmp_path: Path) -> None:
    marker = tmp_path / "terminated"
    # Lingering after stdin's end, it waits out half of `shutdown` before the SIGTERM; the
    # other half is its time to act on it before a SIGKILL would.
    timeouts = Timeouts(connect=10, initialize=20, shutdown=4, probe_interval=None)
    spec = bad("--linger", "--term-file", str(marker), timeouts=timeouts)
    async with running(spec) as worker:
        pid = worker.pid
    await worker.wait_exit()
    await dead(pid)
    assert marker.read_text() == "terminated"


HOST = textwrap.dedent(
    """
    import sys, trio
    from mcpvisor.specs import StdioSpec, Timeouts
    from mcpvisor.workers import Envelope, run_worker

    async def main():
        if sys.argv[2] == "forker":  # the fallback where util-linux's setpriv is missing
            import mcpvisor.workers.spawn as spawn
            spawn._setpriv = lambda: None
        spec = StdioSpec(name="orphan", command=sys.executable,
                         args=(sys.argv[1], "--linger", "--ignore-sigterm"),
                         timeouts=Timeouts(connect=10, initialize=20, probe_interval=None))
        send, receive = trio.open_memory_channel[Envelope](1)
        async with trio.open_nursery() as nursery:
            ready = await nursery.start(run_worker, spec, receive)
            # Outlive trio's idle worker threads (10 s): the server must not die with them.
            await trio.sleep(11)
            print(ready.pid, flush=True)
            await trio.sleep_forever()

    trio.run(main)
    """
)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
async def test_a_server_dies_with_a_sigkilled_host(procs: Any) -> None:
    # Both ways of setting the death signal, at once (each host waits out trio's idle threads).
    async with trio.open_nursery() as nursery:
        for launcher in ("setpriv", "forker"):
            nursery.start_soon(_server_dies_with_its_sigkilled_host, procs, launcher)


async def _server_dies_with_its_sigkilled_host(procs: Any, launcher: str) -> None:
    host = await trio.lowlevel.open_process(
        [sys.executable, "-c", HOST, str(BAD), launcher], stdout=subprocess.PIPE
    )
    assert host.stdout is not None
    try:
        with trio.fail_after(60):
            line = b""
            while not line.endswith(b"\n"):
                chunk = await host.stdout.receive_some()
                assert chunk, f"the host ({launcher}) exited before reporting its server"
                line += chunk
        server = int(line)
        assert procs.pid_alive(server)
        host.kill()
        await host.wait()
        await dead(server)
        assert not procs.pid_alive(server), launcher
    finally:
        with trio.CancelScope(shield=True):
            host.kill()
            await host.wait()
            await host.stdout.aclose()


# -- secrets (#12 item 6) ----------------------------------------------------------------------


async def test_an_error_that_echoes_a_secret_reaches_the_host_redacted() -> None:
    spec = bad(env={"DB_PASSWORD": "hunter2-but-longer"})
    async with running(spec) as worker:
        with pytest.raises(MCPError) as caught:
            await worker.call("call_tool", name="leak_env", arguments={"name": "DB_PASSWORD"})
    assert caught.value.error.message == "cannot open the database with ***"
    assert caught.value.code == -32099


# -- contexts (#13 item 5, worker side) -------------------------------------------------------


async def test_the_sdk_span_of_a_call_has_the_callers_span_as_parent() -> None:
    from opentelemetry import context as otel_context
    from opentelemetry import trace

    caller_span = trace.NonRecordingSpan(
        trace.SpanContext(
            trace_id=0x0AF7651916CD43DD8448EB211C80319C,
            span_id=0x00F067AA0BA902B7,
            is_remote=False,
            trace_flags=trace.TraceFlags(trace.TraceFlags.SAMPLED),
        )
    )
    async with running(bad()) as worker:
        token = otel_context.attach(trace.set_span_in_context(caller_span))
        try:
            context = contextvars.copy_context()
        finally:
            otel_context.detach(token)
        envelope = worker.submit("call_tool", name="meta")
        envelope.context = context
        with trio.fail_after(30):
            traced = json.loads(text_of(await envelope.reply.wait()))
        untraced = json.loads(text_of(await worker.call("call_tool", name="meta")))
    # With no tracer installed the SDK's span carries its parent's context, and the SDK
    # injects it into _meta: the server sees the caller's trace.
    assert traced["traceparent"].startswith("00-0af7651916cd43dd8448eb211c80319c-")
    assert "0af7651916cd43dd8448eb211c80319c" not in json.dumps(untraced)
