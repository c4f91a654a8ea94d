"""The worker over stdio: real subprocesses, real pipes, real signals."""

from __future__ import annotations

import os
import shutil
import signal
import sys
from pathlib import Path
from typing import Any

import mcp_types as types
import pytest
import structlog
import trio
from mcp.shared.exceptions import MCPError
from worker_helpers import FAST, raw_spec, running

from mcpvisor.specs import StdioSpec, Timeouts
from mcpvisor.workers import (
    CallTool,
    Catalog,
    CatalogPart,
    Envelope,
    RequestInterruptedError,
    StartError,
    WorkerHooks,
    hints,
    run_worker,
)


def text_of(result: Any) -> str:
    assert isinstance(result, types.CallToolResult)
    content = result.content[0]
    assert isinstance(content, types.TextContent)
    return content.text


async def test_mcpserver_subprocess_serves_calls(mcp_server: Path, procs: Any) -> None:
    spec = StdioSpec(name="files", command=sys.executable, args=(str(mcp_server),), timeouts=FAST)
    async with running(spec) as worker:
        assert worker.ready is not None
        assert {tool.name for tool in worker.ready.catalog.tools} >= {"add", "sleep", "fail"}
        assert worker.ready.catalog.instructions == "A server for mcpvisor's tests."
        result = await worker.call("call_tool", name="add", arguments={"a": 2, "b": 3})
        assert text_of(result) == "5"
        failed = await worker.call("call_tool", name="fail")
        assert isinstance(failed, types.CallToolResult) and failed.is_error
        assert await worker.call("probe") is None
        pid = worker.pid
    exit = await worker.wait_exit()
    assert exit.kind == "stopped"
    assert procs.pid_gone(pid), "the child must be reaped, not left a zombie"


async def test_raw_server_speaks_the_handshake_era(raw_server: Path) -> None:
    async with running(raw_spec(raw_server)) as worker:
        assert worker.ready is not None
        assert worker.ready.protocol_version == "2025-11-25"
        assert worker.ready.catalog.server_info is not None
        assert worker.ready.catalog.server_info.name == "raw-server"
        echoed = await worker.call("call_tool", name="echo", arguments={"text": "hi"})
        assert text_of(echoed) == "hi"
        tools = await worker.call("list_tools")
        assert isinstance(tools, types.ListToolsResult)
        assert "echo" in {tool.name for tool in tools.tools}
        assert await worker.call("probe") is None  # a ping
        with pytest.raises(MCPError) as caught:
            await worker.call("call_tool", name="rpc_error")
        assert caught.value.code == -32099
        # A JSON-RPC error is the server's answer, not a failure of the session.
        echoed = await worker.call("call_tool", name="echo", arguments={"text": "ok"})
        assert text_of(echoed) == "ok"
    assert (await worker.wait_exit()).kind == "stopped"


async def test_kill_while_idle_is_noticed_at_once(raw_server: Path) -> None:
    async with running(raw_spec(raw_server)) as worker:
        os.kill(worker.pid, signal.SIGKILL)
        exit = await worker.wait_exit()
        late = worker.submit("probe")
    # Sent after the worker returned: nobody serves it, and nobody fails it either.
    assert not late.reply.done
    assert exit.kind == "abnormal"
    assert exit.returncode == -signal.SIGKILL
    assert "SIGKILL" in exit.cause


async def test_kill_during_50_calls_interrupts_every_one(raw_server: Path) -> None:
    spec = raw_spec(raw_server, max_concurrency=50)
    arrived = 0
    all_arrived = trio.Event()

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        nonlocal arrived
        arrived += 1
        if arrived == 50:
            all_arrived.set()

    async with running(spec) as worker:
        in_flight = [worker.submit("call_tool", on_progress, name="hang") for _ in range(50)]
        queued = [worker.submit("call_tool", name="hang") for _ in range(10)]
        await all_arrived.wait()  # the server has received all 50
        os.kill(worker.pid, signal.SIGKILL)
        for envelope in in_flight + queued:
            with pytest.raises(RequestInterruptedError) as caught:
                await envelope.reply.wait()
            assert caught.value.operation == "call_tool"
            assert "SIGKILL" in caught.value.cause
        assert (await worker.wait_exit()).kind == "abnormal"


@pytest.mark.parametrize(("code", "kind"), [(0, "normal"), (1, "abnormal")])
async def test_exit_status_decides_the_kind(raw_server: Path, code: int, kind: str) -> None:
    async with running(raw_spec(raw_server)) as worker:
        envelope = worker.submit("call_tool", name="exit", arguments={"code": code})
        with pytest.raises(RequestInterruptedError):
            await envelope.reply.wait()
        exit = await worker.wait_exit()
    assert (exit.kind, exit.returncode) == (kind, code)


async def test_stray_stdout_lines_are_skipped_and_logged(raw_server: Path) -> None:
    with structlog.testing.capture_logs() as logs:
        async with running(raw_spec(raw_server, "--garbage-at-start")) as worker:
            # The banner before the handshake did not stop the start; nor does a stray line now.
            assert text_of(await worker.call("call_tool", name="garbage")) == "after garbage"
            echoed = await worker.call("call_tool", name="echo", arguments={"text": "still"})
            assert text_of(echoed) == "still"
        exit = await worker.wait_exit()
    assert exit.kind == "stopped"
    skipped = [entry["line"] for entry in logs if entry["event"] == "server.stdout_skipped"]
    assert skipped == ["Server starting... (not json)", "this is not json-rpc"]


async def test_exit_before_the_handshake_is_an_exited_start_error(raw_server: Path) -> None:
    _send, receive = trio.open_memory_channel[Envelope](1)
    with pytest.raises(StartError) as caught:
        await run_worker(raw_spec(raw_server, "--exit-at-start", "3"), receive)
    assert caught.value.kind == "exited"
    assert "exited with code 3" in str(caught.value)
    assert "certificate" not in str(caught.value)


@pytest.mark.parametrize(
    "said",
    [
        "error: invalid peer certificate: UnknownIssuer",  # uv and uvx (rustls)
        "ssl.SSLCertVerificationError: [SSL: CERTIFICATE_VERIFY_FAILED] certificate verify "
        "failed: unable to get local issuer certificate (_ssl.c:1006)",  # Python's ssl
        "Error: self-signed certificate in certificate chain",  # Node
        # A structured log line whose message comes after a long prefix.
        '{"at": "' + "x" * 700 + '", "msg": "httpx.ConnectError: certificate verify failed"}',
    ],
)
async def test_an_untrusted_certificate_on_stderr_names_the_remedy_in_the_cause(said: str) -> None:
    # A chained traceback follows, and its last line has no newline (a process may die
    # mid-line): the certificate error is well before the end.
    after = "\n".join(["  File 'x.py', line 1, in <module>"] * 30 + ["RuntimeError: boom"])
    script = f"import sys; sys.stderr.write({said + chr(10)!r} + {after!r}); sys.exit(2)"
    spec = StdioSpec(name="tls", command=sys.executable, args=("-c", script), timeouts=FAST)
    _send, receive = trio.open_memory_channel[Envelope](1)
    with pytest.raises(StartError) as caught:
        await run_worker(spec, receive)
    cause = str(caught.value)
    assert "exited with code 2" in cause
    assert "untrusted TLS certificate" in cause and '"SSL_CERT_FILE": "${SSL_CERT_FILE}"' in cause
    assert said not in cause  # advice, never the server's own words


# What npx and uvx printed on this machine, for a package that does not exist and for a
# registry they could not reach (each line as they wrote it).
_NPM_404 = [
    "npm error code E404",
    "npm error 404 Not Found - GET https://registry.npmjs.org/@nope%2fzzz-987",
    "npm error 404  The requested resource '@nope/zzz-987@*' could not be found or you do not "
    "have permission to access it.",
    "npm error A complete log of this run can be found in: /root/.npm/_logs/x-debug-0.log",
]
_UV_NOT_FOUND = [
    "error: No solution found when resolving tool dependencies",
    "  cause: Because mcp-server-zzz was not found in the package registry and you require "
    "mcp-server-zzz, we can conclude that your requirements are unsatisfiable.",
]
_NPM_OFFLINE = [
    "npm error code ENOTFOUND",
    "npm error syscall getaddrinfo",
    "npm error network request to https://registry.npmjs.org/zzz failed, reason: getaddrinfo "
    "ENOTFOUND registry.npmjs.org",
    "npm error network This is a problem related to network connectivity.",
]
_NPM_REFUSED = [
    "npm error code ECONNREFUSED",
    "npm error FetchError: request to https://registry.npmjs.org/zzz failed, reason: connect "
    "ECONNREFUSED 127.0.0.1:9",
    "npm error     at ClientRequest.<anonymous> (/usr/lib/node_modules/npm/index.js:130:14)",
]
_UV_OFFLINE = [
    "error: Request failed after 3 retries in 9.4s",
    "  cause: Failed to fetch: https://pypi.org/simple/zzz/",
    "  cause: error sending request for url (https://pypi.org/simple/zzz/)",
    "  cause: client error (Connect)",
    "  cause: dns error",
]
_NPM_UNTRUSTED = [  # npm also calls this a network error; the certificate is the remedy
    "npm error code SELF_SIGNED_CERT_IN_CHAIN",
    "npm error errno SELF_SIGNED_CERT_IN_CHAIN",
    "npm error request to https://registry.npmjs.org/zzz failed, reason: self-signed "
    "certificate in certificate chain",
    "npm error network This is a problem related to network connectivity.",
]


async def _start_cause(lines: list[str], code: int = 1) -> str:
    text = "\n".join(lines) + "\n"
    script = f"import sys; sys.stderr.write({text!r}); sys.exit({code})"
    spec = StdioSpec(name="npx", command=sys.executable, args=("-c", script), timeouts=FAST)
    _send, receive = trio.open_memory_channel[Envelope](1)
    with pytest.raises(StartError) as caught:
        await run_worker(spec, receive)
    return caught.value.cause


@pytest.mark.parametrize(
    ("said", "hint"),
    [
        (_NPM_404, hints.NOT_IN_REGISTRY_HINT),
        (_UV_NOT_FOUND, hints.NOT_IN_REGISTRY_HINT),
        (_NPM_OFFLINE, hints.NETWORK_HINT),
        (_NPM_REFUSED, hints.NETWORK_HINT),
        (_UV_OFFLINE, hints.NETWORK_HINT),
        (_NPM_UNTRUSTED, hints.TLS_TRUST_HINT),
    ],
    ids=["npm 404", "uv not found", "npm offline", "npm refused", "uv offline", "npm cert"],
)
async def test_a_launcher_that_could_not_fetch_its_server_names_the_remedy(
    said: list[str], hint: str
) -> None:
    cause = await _start_cause(said)
    assert cause == f"the server process exited with code 1; {hint}"


async def test_a_server_that_failed_for_its_own_reasons_gets_no_advice() -> None:
    said = ["Traceback (most recent call last):", "ValueError: no API key in MY_SERVER_KEY"]
    assert await _start_cause(said) == "the server process exited with code 1"


@pytest.mark.skipif(shutil.which("uvx") is None, reason="uvx is not installed")
async def test_uvx_of_a_package_that_does_not_exist_says_to_check_its_name() -> None:
    # What the other hints advise, so that only the package's absence is left to report.
    passed = ("SSL_CERT_FILE", "SSL_CERT_DIR", "HTTPS_PROXY", "https_proxy", "UV_INDEX_URL")
    spec = StdioSpec(
        name="nope",
        command="uvx",
        args=("mcpvisor-test-no-such-package-zzz-987",),
        env={name: os.environ[name] for name in passed if name in os.environ},
        timeouts=Timeouts(connect=60, initialize=60, probe_interval=None),
    )
    _send, receive = trio.open_memory_channel[Envelope](1)
    with pytest.raises(StartError) as caught:
        await run_worker(spec, receive)
    cause = caught.value.cause
    if hints.NETWORK_HINT in cause or hints.TLS_TRUST_HINT in cause:
        pytest.skip(f"PyPI is unreachable from this machine ({cause})")
    assert cause.endswith(hints.NOT_IN_REGISTRY_HINT), cause


async def test_a_killed_server_gets_no_certificate_advice() -> None:
    said = "error: invalid peer certificate: UnknownIssuer"
    script = f"import os, sys; sys.stderr.write({said + chr(10)!r}); os.kill(os.getpid(), 9)"
    spec = StdioSpec(name="tls", command=sys.executable, args=("-c", script), timeouts=FAST)
    _send, receive = trio.open_memory_channel[Envelope](1)
    with pytest.raises(StartError) as caught:
        await run_worker(spec, receive)
    assert str(caught.value).endswith("the server process was killed by SIGKILL")


async def test_missing_command_is_a_config_start_error() -> None:
    _send, receive = trio.open_memory_channel[Envelope](1)
    spec = StdioSpec(name="ghost", command="/nonexistent/mcp-server", timeouts=FAST)
    with pytest.raises(StartError) as caught:
        await run_worker(spec, receive)
    assert caught.value.kind == "config"
    assert caught.value.server == "ghost"


async def test_initialize_that_never_answers_times_out(
    raw_server: Path, autojump_clock: trio.testing.MockClock, procs: Any
) -> None:
    _send, receive = trio.open_memory_channel[Envelope](1)
    spec = raw_spec(raw_server, "--no-initialize", timeouts=Timeouts(connect=5, initialize=30))
    with pytest.raises(StartError) as caught:
        await run_worker(spec, receive, label="files~3")
    assert caught.value.kind == "timeout"
    assert str(caught.value) == (
        "server 'files~3' failed to start (timeout): "
        "connect and initialize did not finish within 35s"
    )
    assert not [cmd for cmd in procs.live_descendants().values() if str(raw_server) in cmd]


async def test_a_server_ignoring_sigterm_is_killed(raw_server: Path, procs: Any) -> None:
    timeouts = Timeouts(connect=10, initialize=20, shutdown=0.5, probe_interval=None)
    spec = raw_spec(raw_server, "--ignore-sigterm", "--linger", timeouts=timeouts)
    async with running(spec) as worker:
        pid = worker.pid
    assert (await worker.wait_exit()).kind == "stopped"
    assert procs.pid_gone(pid)


async def test_grandchildren_die_with_the_server(raw_server: Path, procs: Any) -> None:
    async with running(raw_spec(raw_server)) as worker:
        grandchild = int(text_of(await worker.call("call_tool", name="grandchild")))
        assert procs.pid_alive(grandchild)
    await worker.wait_exit()
    assert not procs.pid_alive(grandchild)


async def test_stop_interrupts_in_flight_requests(raw_server: Path) -> None:
    async with running(raw_spec(raw_server)) as worker:
        envelope = worker.submit("call_tool", name="hang")
        assert text_of(await worker.call("call_tool", name="echo", arguments={"text": "x"})) == "x"
    with pytest.raises(RequestInterruptedError) as caught:
        await envelope.reply.wait()
    assert caught.value.cause == "stopped by its owner"
    assert (await worker.wait_exit()).kind == "stopped"


async def test_cancelling_the_worker_tears_down_and_propagates(
    raw_server: Path, procs: Any
) -> None:
    send, receive = trio.open_memory_channel[Envelope](10)
    with trio.CancelScope() as scope:
        async with trio.open_nursery() as nursery:
            ready = await nursery.start(run_worker, raw_spec(raw_server), receive)
            envelope = Envelope(CallTool(name="echo", arguments={"text": "a"}))
            send.send_nowait(envelope)
            await envelope.reply.wait()
            hanging = Envelope(CallTool(name="hang"))
            send.send_nowait(hanging)
            scope.cancel()
    assert scope.cancelled_caught
    with pytest.raises(RequestInterruptedError):
        await hanging.reply.wait()
    assert ready.pid is not None and procs.pid_gone(ready.pid)


async def test_caller_cancellation_reaches_the_server_or_skips_the_request(
    raw_server: Path,
) -> None:
    arrived = trio.Event()

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        arrived.set()

    with structlog.testing.capture_logs() as logs:
        async with running(raw_spec(raw_server, max_concurrency=1)) as worker:
            blocker = worker.submit("call_tool", on_progress, name="hang")
            await arrived.wait()
            late = worker.submit("call_tool", name="echo", arguments={"text": "late"})
            late.cancel()  # still queued behind the blocker
            blocker.cancel()
            with pytest.raises(RequestInterruptedError) as caught:
                await blocker.reply.wait()
            assert caught.value.cause == "cancelled by the caller"
            with pytest.raises(RequestInterruptedError) as caught:
                await late.reply.wait()
            assert caught.value.cause == "cancelled by the caller before it was sent"
        await worker.wait_exit()
    stderr = [entry["line"] for entry in logs if entry["event"] == "server.stderr"]
    # The raw server reports each notifications/cancelled it receives on stderr.
    assert len([line for line in stderr if line.startswith("cancelled ")]) == 1


async def test_tool_list_changes_reach_the_hook(raw_server: Path) -> None:
    changed: list[tuple[types.Tool, ...]] = []
    seen = trio.Event()

    def on_catalog(catalog: Catalog, parts: frozenset[CatalogPart]) -> None:
        assert parts == {"tools"}
        changed.append(catalog.tools)
        seen.set()

    hooks = WorkerHooks(on_catalog=on_catalog)
    async with running(raw_spec(raw_server), hooks=hooks) as w:
        assert w.ready is not None
        before = {tool.name for tool in w.ready.catalog.tools}
        await w.call("call_tool", name="change_tools")
        await seen.wait()
    after = {tool.name for tool in changed[-1]}
    assert after - before == {f"extra{len(before)}"}


async def test_probe_misses_end_the_session(raw_server: Path) -> None:
    timeouts = Timeouts(
        connect=10,
        initialize=20,
        shutdown=0.5,
        probe_interval=0.05,
        probe_timeout=0.2,
        probe_misses=2,
    )
    async with running(raw_spec(raw_server, timeouts=timeouts)) as worker:
        # SIGSTOP freezes the server without ending it: it can no longer answer.
        os.kill(worker.pid, signal.SIGSTOP)
        exit = await worker.wait_exit()
    assert exit.kind == "abnormal"
    assert exit.cause.startswith("2 consecutive health probes failed")


async def test_stderr_is_logged_cut_and_rate_limited(
    raw_server: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    with structlog.testing.capture_logs() as logs:
        async with running(raw_spec(raw_server)) as worker:
            await worker.call("call_tool", name="stderr", arguments={"lines": 120, "length": 5000})
        await worker.wait_exit()
    lines = [entry for entry in logs if entry["event"] == "server.stderr"]
    suppressed = [entry for entry in logs if entry["event"] == "server.stderr_suppressed"]
    assert 0 < len(lines) <= 50 + 1
    assert all(entry["server"] == "raw" and len(entry["line"]) <= 2000 for entry in lines)
    assert all(entry.get("truncated") for entry in lines)
    assert len(lines) + sum(entry["lines"] for entry in suppressed) == 120
    assert "xxxxxxxxxx" not in capfd.readouterr().err


async def test_secrets_stay_out_of_the_child_and_the_logs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MCPVISOR_HOST_SECRET", "host-secret-value")
    script = 'echo "host=[$MCPVISOR_HOST_SECRET] token=$TOKEN" >&2; exit 3'
    spec = StdioSpec(
        name="leaky",
        command="/bin/sh",
        args=("-c", script),
        env={"TOKEN": "spec-secret-value"},
        timeouts=FAST,
    )
    _send, receive = trio.open_memory_channel[Envelope](1)
    with structlog.testing.capture_logs() as logs, pytest.raises(StartError) as caught:
        await run_worker(spec, receive)
    assert caught.value.kind == "exited"
    stderr = [entry["line"] for entry in logs if entry["event"] == "server.stderr"]
    assert stderr == ["host=[] token=***"]
    everything = repr(logs) + str(caught.value) + repr(spec)
    assert "spec-secret-value" not in everything
    assert "host-secret-value" not in everything


async def test_cancelling_a_start_leaves_no_process(raw_server: Path, procs: Any) -> None:
    _send, receive = trio.open_memory_channel[Envelope](1)
    spawned = trio.Event()
    pids: list[int] = []

    def watch(_logger: Any, _method: str, event: Any) -> Any:
        if event["event"] == "server.spawned":
            pids.append(event["pid"])
            spawned.set()
        return event

    with structlog.testing.capture_logs(processors=[watch]):
        async with trio.open_nursery() as nursery:

            async def cancel_once_spawned() -> None:
                await spawned.wait()
                nursery.cancel_scope.cancel()

            nursery.start_soon(cancel_once_spawned)
            await nursery.start(run_worker, raw_spec(raw_server, "--no-initialize"), receive)
    assert nursery.cancel_scope.cancelled_caught
    assert len(pids) == 1 and procs.pid_gone(pids[0])
