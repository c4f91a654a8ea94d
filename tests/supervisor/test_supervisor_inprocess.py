"""The supervisor with in-process servers: routing, aggregation, status, events, shutdown."""

from __future__ import annotations

import threading

import pytest
import trio
import trio.testing
from mcp.server.mcpserver import MCPServer
from mcp.shared.exceptions import MCPError

import mcpvisor as mv
from tests.supervisor.fakes import FakeServer
from tests.supervisor.support import QUICK, state_is, until


def spec_of(*fakes: FakeServer, **kwargs: object) -> mv.SupervisorSpec:
    return mv.SupervisorSpec(servers=[f.spec(restart=QUICK, **kwargs) for f in fakes])  # type: ignore[arg-type]


async def test_tools_are_aggregated_and_callable_by_either_name() -> None:
    a, b = FakeServer("alpha"), FakeServer("beta")
    async with mv.open_supervisor(spec_of(a, b)) as client:
        tools = await client.list_tools()
        offered = sorted(t.name for t in client.catalog("alpha").tools)
        assert {"add", "bump", "echo", "wait"} <= set(offered)
        assert sorted(t.qualified_name for t in tools) == [
            f"{server}__{name}" for server in ("alpha", "beta") for name in offered
        ]
        assert {t.server for t in tools} == {"alpha", "beta"}
        assert all(t.tool.name == t.name for t in tools)
        result = await client.call_tool("alpha", "add", {"a": 2, "b": 3})
        assert result.structured_content == {"result": 5}
        result = await client.call_tool("beta__echo", {"text": "hi"})
        assert result.content[0].text == "hi"  # type: ignore[union-attr]
        assert (a.calls, b.calls) == (1, 1)


async def test_listing_makes_no_round_trip() -> None:
    a = FakeServer("alpha")
    async with mv.open_supervisor(spec_of(a)) as client:
        sessions_before = a.sessions
        for _ in range(5):
            await client.list_tools()
        assert a.calls == 0 and a.sessions == sessions_before


async def test_unknown_server_and_tool_suggest_the_nearest_name() -> None:
    a = FakeServer("alpha")
    async with mv.open_supervisor(spec_of(a)) as client:
        with pytest.raises(mv.UnknownServerError, match="did you mean 'alpha'"):
            await client.call_tool("alpah", "add", {})
        with pytest.raises(mv.UnknownToolError, match="did you mean 'echo'") as info:
            await client.call_tool("alpha__ecko", {"text": "x"})
        assert info.value.server == "alpha"
        # No server in the name: how to write it, and the qualified name it may mean.
        for bare in ("echo", "alpha_echo"):
            with pytest.raises(mv.UsageError, match="server__tool; did you mean 'alpha__echo'"):
                await client.call_tool(bare, {"text": "x"})


def test_a_bare_tool_name_is_pointed_at_its_qualified_name() -> None:
    known = ["files__read", "files__pid", "weather__forecast"]
    assert mv.UnknownToolError("files+weather", "pid", known).suggestion == "files__pid"
    assert mv.UnknownToolError("files+weather", "forecst", known).suggestion is None
    assert mv.UnknownToolError("files", "raed", ["read", "write"]).suggestion == "read"


async def test_server_errors_reach_the_caller_unchanged() -> None:
    a = FakeServer("alpha")
    async with mv.open_supervisor(spec_of(a)) as client:
        result = await client.call_tool("alpha", "add", {"a": "not a number"})
        assert result.is_error
        with pytest.raises(MCPError):
            await client.read_resource("alpha", "file:///nowhere")


async def test_status_reports_health_for_an_endpoint() -> None:
    a = FakeServer("alpha")
    broken = FakeServer("broken", fail_starts=100)
    spec = mv.SupervisorSpec(
        servers=[a.spec(required=True), broken.spec(restart=mv.RestartPolicy(max_restarts=0))]
    )
    async with mv.open_supervisor(spec) as client:
        status = client.status()
        assert status.servers["alpha"].state is mv.ServerState.ACTIVE
        assert status.servers["broken"].state is mv.ServerState.DROPPED
        body = status.to_dict()
        assert body["status"] == "degraded"
        assert body["active"] == ["alpha"] and body["dropped"] == ["broken"]
        assert body["servers"]["broken"]["last_error"]
        assert body["servers"]["alpha"]["transport"] == "inprocess"
        assert body["servers"]["alpha"]["tools"] == len(await client.list_tools())


async def test_a_crash_is_restarted_and_the_next_call_succeeds(autojump_clock: object) -> None:
    a = FakeServer("alpha")
    async with mv.open_supervisor(spec_of(a)) as client:
        async with client.subscribe() as events:
            a.crash()
            seen = []
            with trio.fail_after(60):
                async for event in events:
                    assert isinstance(event, mv.LifecycleEvent)
                    seen.append((event.old, event.new, event.reason))
                    if event.new is mv.ServerState.ACTIVE:
                        break
        assert seen == [
            (mv.ServerState.ACTIVE, mv.ServerState.FAILED, "crashed"),
            (mv.ServerState.FAILED, mv.ServerState.STARTING, "backoff"),
            (mv.ServerState.STARTING, mv.ServerState.ACTIVE, "ready"),
        ]
        assert (await client.call_tool("alpha", "add", {"a": 1, "b": 1})).structured_content == {
            "result": 2
        }
        assert client.status().servers["alpha"].restarts == 1
        assert a.sessions == 2


async def test_in_flight_calls_are_interrupted_and_never_retried(autojump_clock: object) -> None:
    a = FakeServer("alpha")
    outcomes: list[BaseException | None] = []

    async def call() -> None:
        try:
            await client.call_tool("alpha", "wait", {})
            outcomes.append(None)
        except mv.RequestInterruptedError as error:
            outcomes.append(error)

    async with mv.open_supervisor(spec_of(a)) as client:
        async with trio.open_nursery() as nursery:
            for _ in range(10):
                nursery.start_soon(call)
            await trio.testing.wait_all_tasks_blocked()
            assert a.calls == 10
            a.crash()
        assert len(outcomes) == 10
        assert all(isinstance(o, mv.RequestInterruptedError) for o in outcomes)
        assert a.calls == 10


async def test_requests_wait_for_a_restarting_server(autojump_clock: object) -> None:
    a = FakeServer("alpha")
    slow = mv.RestartPolicy(backoff=mv.Backoff(initial=5, max=5, jitter=0))
    async with mv.open_supervisor(mv.SupervisorSpec(servers=[a.spec(restart=slow)])) as client:
        a.crash()
        await until(client, state_is("alpha", mv.ServerState.FAILED))
        start = trio.current_time()
        result = await client.call_tool("alpha", "add", {"a": 1, "b": 2})
        assert result.structured_content == {"result": 3}
        assert trio.current_time() - start == pytest.approx(5, abs=0.5)


async def test_a_request_gives_up_at_its_timeout_while_waiting(autojump_clock: object) -> None:
    a = FakeServer("alpha")
    slow = mv.RestartPolicy(backoff=mv.Backoff(initial=30, max=30, jitter=0))
    async with mv.open_supervisor(mv.SupervisorSpec(servers=[a.spec(restart=slow)])) as client:
        a.crash()
        await until(client, state_is("alpha", mv.ServerState.FAILED))
        with pytest.raises(mv.RequestTimeoutError) as info:
            await client.call_tool("alpha", "add", {"a": 1, "b": 2}, timeout=2)
        assert info.value.server == "alpha" and info.value.timeout == 2
        assert a.calls == 0


async def test_a_sync_tool_stuck_in_its_thread_still_times_out_at_the_deadline(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # The SDK runs a sync tool in a thread that no cancellation stops: the caller must be
    # told at its deadline all the same, and the server must go on serving.
    release = threading.Event()
    server = MCPServer("stuck")

    @server.tool()
    def stuck() -> str:
        release.wait(30)
        return "late"

    @server.tool()
    async def add(a: int, b: int) -> int:
        return a + b

    spec = mv.SupervisorSpec(servers=[mv.InProcessSpec(name="stuck", server=server)])
    try:
        async with mv.open_supervisor(spec) as client:
            # An answered call leaves an earlier deadline behind, which the watch must renew.
            await client.call_tool("stuck", "add", {"a": 1, "b": 1}, timeout=1)
            start = trio.current_time()
            with pytest.raises(mv.RequestTimeoutError) as info:
                await client.call_tool("stuck", "stuck", {}, timeout=5)
            assert trio.current_time() - start == pytest.approx(5)
            assert info.value.server == "stuck" and info.value.timeout == 5
            assert client.status().servers["stuck"].state is mv.ServerState.ACTIVE
            release.set()
            result = await client.call_tool("stuck", "add", {"a": 1, "b": 2})
            assert result.structured_content == {"result": 3}
    finally:
        release.set()


async def test_a_cancelled_caller_cancels_the_server_side_call() -> None:
    a = FakeServer("alpha")
    async with mv.open_supervisor(spec_of(a)) as client:
        with trio.move_on_after(0.2) as scope:
            await client.call_tool("alpha", "wait", {})
        assert scope.cancelled_caught
        with trio.fail_after(10):
            await a.cancellation.wait()
        assert a.cancelled == 1


async def test_an_idempotent_request_cut_by_a_crash_is_served_by_the_next_session(
    autojump_clock: object,
) -> None:
    a = FakeServer("alpha")
    async with mv.open_supervisor(spec_of(a)) as client:
        results: list[object] = []

        async def read() -> None:
            results.append(await client.read_resource("alpha", "memo://slow"))

        async with trio.open_nursery() as nursery:
            nursery.start_soon(read)
            await trio.testing.wait_all_tasks_blocked()
            assert a.reads == 1
            a.crash()
            await until(
                client,
                lambda s: (
                    s.servers["alpha"].restarts == 1
                    and s.servers["alpha"].state is mv.ServerState.ACTIVE
                ),
            )
            await trio.testing.wait_all_tasks_blocked()
            assert a.reads == 2
            a.release.set()
        assert [r.contents[0].text for r in results] == ["slow memo"]  # type: ignore[attr-defined]


async def test_dropped_and_stopped_servers_fail_requests_at_once(autojump_clock: object) -> None:
    a = FakeServer("alpha", fail_starts=100)
    b = FakeServer("beta")
    spec = mv.SupervisorSpec(servers=[a.spec(restart=mv.RestartPolicy(max_restarts=0)), b.spec()])
    async with mv.open_supervisor(spec) as client:
        before = trio.current_time()
        with pytest.raises(mv.ServerUnavailableError, match="dropped") as info:
            await client.call_tool("alpha", "add", {"a": 1, "b": 1})
        assert info.value.state is mv.ServerState.DROPPED
        await client.stop("beta")
        with pytest.raises(mv.ServerUnavailableError, match="stopped"):
            await client.call_tool("beta", "add", {"a": 1, "b": 1})
        assert trio.current_time() == before, "neither waited for anything"
        assert b.calls == 0


async def test_tools_of_unavailable_servers_are_listed_on_request() -> None:
    a, b = FakeServer("alpha"), FakeServer("beta")
    async with mv.open_supervisor(spec_of(a, b)) as client:
        await client.stop("beta")
        assert {t.server for t in await client.list_tools()} == {"alpha"}
        everything = await client.list_tools(include_unavailable=True)
        assert {(t.server, t.state) for t in everything} == {
            ("alpha", mv.ServerState.ACTIVE),
            ("beta", mv.ServerState.STOPPED),
        }


async def test_resources_and_prompts_are_aggregated() -> None:
    a = FakeServer("alpha")

    @a.server.resource("memo://one")
    async def one() -> str:
        return "first memo"

    @a.server.prompt()
    async def greet(name: str) -> str:
        return f"Hello {name}"

    async with mv.open_supervisor(spec_of(a)) as client:
        resources = await client.list_resources()
        assert sorted((s, str(r.uri)) for s, r in resources) == [
            ("alpha", "memo://one"),
            ("alpha", "memo://slow"),
        ]
        prompts = await client.list_prompts()
        assert sorted((s, p.name) for s, p in prompts) == [("alpha", "greet"), ("alpha", "review")]
        read = await client.read_resource("alpha", "memo://one")
        assert read.contents[0].text == "first memo"  # type: ignore[union-attr]
        prompt = await client.get_prompt("alpha", "greet", {"name": "Ada"})
        assert "Hello Ada" in prompt.messages[0].content.text  # type: ignore[union-attr]


async def test_a_required_server_that_cannot_start_fails_open(autojump_clock: object) -> None:
    bad = FakeServer("core", fail_starts=100)
    good = FakeServer("extra")
    spec = mv.SupervisorSpec(servers=[bad.spec(required=True, restart=QUICK), good.spec()])
    with pytest.raises(mv.RequiredServerError) as info:
        async with mv.open_supervisor(spec):
            pytest.fail("open_supervisor must not return")
    assert info.value.server == "core"
    assert "refuses to start" in (info.value.cause or "")
    assert bad.sessions == QUICK.max_restarts + 1
    assert good.live == 0


async def test_a_required_server_dropped_at_runtime_escalates(autojump_clock: object) -> None:
    core = FakeServer("core")
    with pytest.raises(mv.RequiredServerError) as info:
        async with mv.open_supervisor(
            mv.SupervisorSpec(servers=[core.spec(required=True, restart=QUICK)])
        ):
            core.fail_starts = 100
            core.crash()
            await trio.sleep_forever()
    assert info.value.server == "core"
    assert core.live == 0


async def test_host_errors_leave_the_block_unwrapped() -> None:
    a = FakeServer("alpha")
    with pytest.raises(KeyError, match="boom"):
        async with mv.open_supervisor(spec_of(a)):
            raise KeyError("boom")
    assert a.live == 0


async def test_leaving_the_block_stops_servers_and_fails_waiters(autojump_clock: object) -> None:
    a = FakeServer("alpha")
    slow = mv.RestartPolicy(backoff=mv.Backoff(initial=30, max=30, jitter=0))
    errors: list[BaseException] = []
    spec = mv.SupervisorSpec(servers=[a.spec(restart=slow)])
    async with trio.open_nursery() as nursery, mv.open_supervisor(spec) as client:
        a.crash()
        await until(client, state_is("alpha", mv.ServerState.FAILED))

        async def waiter() -> None:
            try:
                await client.call_tool("alpha", "add", {"a": 1, "b": 1})
            except mv.ServerUnavailableError as error:
                errors.append(error)

        nursery.start_soon(waiter)
        await trio.testing.wait_all_tasks_blocked()
    assert len(errors) == 1
    assert a.live == 0


async def test_host_cancellation_tears_down(autojump_clock: object) -> None:
    a, b = FakeServer("alpha"), FakeServer("beta")
    with trio.move_on_after(1):
        async with mv.open_supervisor(spec_of(a, b)):
            await trio.sleep_forever()
    assert a.live == 0 and b.live == 0


async def test_supervisor_run_under_a_host_nursery() -> None:
    a = FakeServer("alpha")
    async with trio.open_nursery() as nursery:
        client = await nursery.start(mv.Supervisor(spec_of(a)).run)
        assert (await client.call_tool("alpha", "add", {"a": 1, "b": 1})).structured_content == {
            "result": 2
        }
        await client.aclose()
    assert a.live == 0


async def test_events_are_logged() -> None:
    import structlog.testing

    a = FakeServer("alpha")
    with structlog.testing.capture_logs() as logs:
        async with mv.open_supervisor(spec_of(a)) as client:
            await client.stop("alpha")
    events = [e for e in logs if e["event"] == "server.event"]
    assert [(e["old"], e["new"], e["reason"]) for e in events][:3] == [
        (None, "starting", "start"),
        ("starting", "active", "ready"),
        ("active", "stopped", "stopped"),
    ]
    assert all(e["server"] == "alpha" for e in events)


async def test_a_queued_call_that_never_reached_the_server_waits_for_the_restart(
    autojump_clock: object,
) -> None:
    a = FakeServer("alpha")
    spec = mv.SupervisorSpec(servers=[a.spec(restart=QUICK, max_concurrency=1)])
    outcomes: dict[str, object] = {}

    async def call(tool: str, arguments: dict[str, int]) -> None:
        try:
            outcomes[tool] = await client.call_tool("alpha", tool, arguments)
        except mv.RequestInterruptedError as error:
            outcomes[tool] = error

    async with mv.open_supervisor(spec) as client:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(call, "wait", {})
            await trio.testing.wait_all_tasks_blocked()
            nursery.start_soon(call, "add", {"a": 20, "b": 22})
            await trio.testing.wait_all_tasks_blocked()
            assert a.calls == 1
            a.crash()
        interrupted = outcomes["wait"]
        assert isinstance(interrupted, mv.RequestInterruptedError) and interrupted.sent
        assert outcomes["add"].structured_content == {"result": 42}  # type: ignore[attr-defined]
        assert a.sessions == 2 and a.calls == 2
