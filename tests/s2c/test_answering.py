"""Sampling, elicitation, roots and logs answered by host handlers, against the SDK's server.

Each test runs the s2c test server as a real subprocess (stdio) or in process, in both
protocol eras: 2025-era sessions get standalone server-to-client requests, 2026-07-28 ones
input-required rounds, and both must reach the same handlers.
"""

from __future__ import annotations

import logging
from typing import Any

import mcp_types as types
import pytest
import structlog
from mcp.shared.exceptions import MCPError

import mcpvisor as mv
from tests.s2c.support import Recorder, json_of, stdio_spec, text_of

ERAS = ["legacy", "2026-07-28"]


@pytest.mark.parametrize("protocol", ERAS)
async def test_sampling_and_elicitation_reach_the_host_handlers(protocol: str) -> None:
    host = Recorder()
    spec = mv.SupervisorSpec([stdio_spec(protocol=protocol)], handlers=host.handlers())
    async with mv.open_supervisor(spec) as client:
        sampled = await client.call_tool("s2c", "ask_model", {"prompt": "hello"})
        assert text_of(sampled) == "host says hello"
        asked = await client.call_tool("s2c", "ask_user", {"question": "why?"})
        assert text_of(asked) == "accept:host-42"
    kinds = [kind for kind, _ in host.asked]
    assert kinds == ["sampling", "elicitation"]
    for _, ctx in host.asked:
        assert ctx.server == "s2c" and ctx.session == "s2c"
        assert ctx.protocol_version is not None
        assert ctx.routed is False
        assert ctx.request_id is not None


@pytest.mark.parametrize("protocol", ERAS)
async def test_capabilities_follow_handlers(protocol: str) -> None:
    none = stdio_spec("bare", protocol=protocol)
    roots_only = stdio_spec(
        "rooted", protocol=protocol, handlers=mv.ClientHandlers(roots=["file:///data"])
    )
    host = Recorder()
    everything = stdio_spec(
        "full", protocol=protocol, handlers=host.handlers(roots=["file:///data"])
    )
    no_sampling = stdio_spec(
        "nosampling", protocol=protocol, handlers=mv.ClientHandlers(disabled={"sampling"})
    )
    spec = mv.SupervisorSpec(
        [none, roots_only, everything, no_sampling],
        handlers=mv.ClientHandlers(sampling=host.sampling),
    )
    async with mv.open_supervisor(spec) as client:
        seen = {
            name: set(json_of(await client.call_tool(name, "client_capabilities", {})))
            for name in ("bare", "rooted", "full", "nosampling")
        }
    # The supervisor-level sampling handler reaches every server that does not switch it off.
    assert seen["bare"] & {"sampling", "elicitation", "roots"} == {"sampling"}
    assert seen["rooted"] & {"sampling", "elicitation", "roots"} == {"sampling", "roots"}
    assert seen["full"] >= {"sampling", "elicitation", "roots"}
    assert seen["nosampling"] & {"sampling", "elicitation", "roots"} == set()


async def test_without_handlers_the_server_is_refused_at_once() -> None:
    spec = mv.SupervisorSpec([stdio_spec(protocol="legacy")])
    async with mv.open_supervisor(spec) as client:
        # The server refuses the call itself (no sampling capability); nothing hangs.
        with pytest.raises(MCPError, match="sampling capability"):
            await client.call_tool("s2c", "ask_model", {"prompt": "hello"})


@pytest.mark.parametrize("protocol", ERAS)
async def test_static_roots_and_a_roots_callable(protocol: str) -> None:
    asked: list[mv.HandlerContext] = []

    async def roots(ctx: mv.HandlerContext) -> list[str]:
        asked.append(ctx)
        return ["file:///from/callable"]

    spec = mv.SupervisorSpec(
        [
            stdio_spec("static", protocol=protocol),
            stdio_spec("dynamic", protocol=protocol, handlers=mv.ClientHandlers(roots=roots)),
        ],
        handlers=mv.ClientHandlers(roots=["file:///data", "file:///srv"]),
    )
    async with mv.open_supervisor(spec) as client:
        static = json_of(await client.call_tool("static", "roots", {}))
        dynamic = json_of(await client.call_tool("dynamic", "roots", {}))
    assert static == ["file:///data", "file:///srv"]
    assert dynamic == ["file:///from/callable"]
    assert [ctx.server for ctx in asked] == ["dynamic"]


@pytest.mark.parametrize("protocol", ERAS)
async def test_a_raising_or_slow_handler_answers_with_an_error_and_the_session_lives(
    protocol: str,
) -> None:
    import trio

    async def broken(ctx: mv.HandlerContext, params: Any) -> Any:
        raise RuntimeError("secret internals")

    async def slow(ctx: mv.HandlerContext, params: Any) -> Any:
        await trio.sleep_forever()

    async def wrong(ctx: mv.HandlerContext, params: Any) -> Any:
        return "not a result"

    spec = mv.SupervisorSpec(
        [
            stdio_spec("broken", protocol=protocol, handlers=mv.ClientHandlers(sampling=broken)),
            stdio_spec(
                "slow", protocol=protocol, handlers=mv.ClientHandlers(sampling=slow, timeout=0.5)
            ),
            stdio_spec("wrong", protocol=protocol, handlers=mv.ClientHandlers(sampling=wrong)),
        ]
    )
    async with mv.open_supervisor(spec) as client:
        for name in ("broken", "slow", "wrong"):
            try:
                result = await client.call_tool(name, "ask_model", {"prompt": "x"})
            except MCPError as error:
                # 2026-07-28: the SDK raises the handler's ErrorData for an input round.
                assert "handler" in error.error.message
                assert "secret internals" not in error.error.message
            else:
                assert result.is_error
                assert "secret internals" not in text_of_any(result)
            # The session survived: a plain call still works, without a restart.
            assert json_of(await client.call_tool(name, "state", {}))["level"] is None
        status = client.status()
    assert all(s.restarts == 0 for s in status.servers.values())


@pytest.mark.parametrize("protocol", ERAS)
async def test_a_sync_handler_is_refused_with_an_answer_that_says_so(protocol: str) -> None:
    answered = types.CreateMessageResult(
        role="assistant", content=types.TextContent(type="text", text="sync"), model="m"
    )

    def sync_sampling(ctx: mv.HandlerContext, params: Any) -> Any:
        return answered

    def sync_roots(ctx: mv.HandlerContext) -> Any:
        return ["file:///data"]

    handlers = mv.ClientHandlers(sampling=sync_sampling, roots=sync_roots)
    spec = mv.SupervisorSpec([stdio_spec("sync", protocol=protocol, handlers=handlers)])
    with structlog.testing.capture_logs() as logs:
        async with mv.open_supervisor(spec) as client:
            for tool, args in (("ask_model", {"prompt": "x"}), ("roots", {})):
                try:
                    result = await client.call_tool("sync", tool, args)
                except MCPError as error:
                    message = error.error.message
                else:
                    assert result.is_error, result
                    message = text_of_any(result)
                assert "is not async (declare it with async def)" in message, message
            assert json_of(await client.call_tool("sync", "state", {}))["level"] is None
    refused = [e for e in logs if e["event"] == "server.handler_not_async"]
    assert {(e["what"], e["returned"]) for e in refused} == {
        ("sampling", "CreateMessageResult"),
        ("roots", "list"),
    }


def text_of_any(result: types.CallToolResult) -> str:
    return " ".join(b.text for b in result.content if isinstance(b, types.TextContent))


async def test_log_records_become_structlog_records_and_reach_the_callback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    host = Recorder()
    spec = mv.SupervisorSpec(
        [stdio_spec(protocol="legacy", handlers=host.handlers(log_level="warning"))]
    )
    with caplog.at_level(logging.DEBUG, logger="mcpvisor"):
        async with mv.open_supervisor(spec) as client:
            # logging/setLevel was sent after ready, as the handlers asked.
            assert json_of(await client.call_tool("s2c", "state", {}))["level"] == "warning"
            await client.call_tool("s2c", "log", {"count": 3, "level": "error"})
            await client.call_tool("s2c", "log", {"count": 2, "level": "info"})
            from tests.s2c.support import wait_for

            await wait_for(lambda: len(host.logs) >= 3)
    assert [(r.server, r.level, r.data, r.logger) for r in host.logs] == [
        ("s2c", "error", f"line {i}", "s2c") for i in range(3)
    ]
    records = [r for r in caplog.records if "server.log" in r.getMessage()]
    assert len(records) == 3
    assert all(r.levelno == logging.ERROR and "server='s2c'" in r.getMessage() for r in records)
    assert not any("line 3" in r.getMessage() or "level='info'" in r.getMessage() for r in records)


async def test_a_log_flood_is_bounded(caplog: pytest.LogCaptureFixture) -> None:
    from mcpvisor.workers.callbacks import LOG_BURST

    host = Recorder()
    spec = mv.SupervisorSpec([stdio_spec(protocol="legacy", handlers=host.handlers())])
    count = LOG_BURST * 5
    with caplog.at_level(logging.DEBUG, logger="mcpvisor"):
        async with mv.open_supervisor(spec) as client:
            await client.call_tool("s2c", "log", {"count": count, "level": "info"}, timeout=120)
            # The worker still serves at once after the flood.
            assert json_of(await client.call_tool("s2c", "state", {}))["subscribed"] == []
            await client.call_tool("s2c", "log", {"count": 1, "level": "error"})
            from tests.s2c.support import wait_for

            await wait_for(lambda: any(r.level == "error" for r in host.logs))
    kept = [r for r in host.logs if r.level == "info"]
    assert LOG_BURST <= len(kept) < count
    dropped = [r for r in caplog.records if "server.log_dropped" in r.getMessage()]
    assert dropped, "dropping records must itself be logged"


async def test_2026_sessions_send_logs_only_with_the_per_request_opt_in() -> None:
    from tests.s2c.support import wait_for

    opted, silent = Recorder(), Recorder()
    spec = mv.SupervisorSpec(
        [
            stdio_spec("opted", protocol="2026-07-28", handlers=opted.handlers(log_level="info")),
            stdio_spec("silent", protocol="2026-07-28", handlers=silent.handlers()),
        ]
    )
    async with mv.open_supervisor(spec) as client:
        for name in ("opted", "silent"):
            await client.call_tool(name, "log", {"count": 2, "level": "warning"})
        await wait_for(lambda: len(opted.logs) >= 2)
        # The silent server's call has returned, and its records would have come first.
        await client.call_tool("silent", "log", {"count": 1, "level": "error"})
    assert [(r.server, r.level) for r in opted.logs] == [("opted", "warning")] * 2
    assert silent.logs == []


async def test_server_log_records_never_carry_a_configured_secret(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from tests.s2c.support import wait_for

    secret = "sk-live-0123456789abcdef"
    host = Recorder()
    spec = mv.SupervisorSpec(
        [stdio_spec(protocol="legacy", env={"API_TOKEN": secret}, handlers=host.handlers())]
    )
    with caplog.at_level(logging.DEBUG, logger="mcpvisor"):
        async with mv.open_supervisor(spec) as client:
            await client.call_tool("s2c", "log_env", {"name": "API_TOKEN"})
            await wait_for(lambda: len(host.logs) >= 2)
    assert all(secret not in repr(r.data) for r in host.logs)
    assert "token is" in str(host.logs[0].data)
    assert not any(secret in r.getMessage() for r in caplog.records)


async def test_server_logs_never_reach_stdout(capfd: pytest.CaptureFixture[str]) -> None:
    from tests.s2c.support import wait_for

    host = Recorder()
    spec = mv.SupervisorSpec([stdio_spec(protocol="legacy", handlers=host.handlers())])
    async with mv.open_supervisor(spec) as client:
        await client.call_tool("s2c", "log", {"count": 5, "level": "emergency"})
        await wait_for(lambda: len(host.logs) >= 5)
    out, _ = capfd.readouterr()
    assert "line 0" not in out and "server.log" not in out
