"""Edge cases of startup, escalation, shutdown, removal and deadlines (from review)."""

from __future__ import annotations

import contextlib

import pytest
import trio
import trio.testing

import mcpvisor as mv
from tests.supervisor.fakes import FakeServer
from tests.supervisor.support import QUICK, state_is, until

S = mv.ServerState


async def test_a_required_temporary_server_that_fails_to_start_fails_open(
    autojump_clock: object,
) -> None:
    core = FakeServer("core", fail_starts=1)
    once = mv.RestartPolicy(restart="temporary")
    with pytest.raises(mv.RequiredServerError) as info:
        async with mv.open_supervisor(
            mv.SupervisorSpec(servers=[core.spec(required=True, restart=once)])
        ):
            pytest.fail("must not get here")
    assert info.value.server == "core"


async def test_a_required_server_dropped_by_the_host_says_so_once(autojump_clock: object) -> None:
    core = FakeServer("core")
    with pytest.raises(mv.RequiredServerError) as info:
        async with mv.open_supervisor(mv.SupervisorSpec(servers=[core.spec(required=True)])) as c:
            await c.drop("core")
            await trio.sleep_forever()
    assert str(info.value) == "required server 'core' was dropped"


async def test_escalation_wins_over_the_host_errors_it_causes(autojump_clock: object) -> None:
    core = FakeServer("core")
    spec = mv.SupervisorSpec(servers=[core.spec(required=True, restart=QUICK)])
    with pytest.raises(mv.RequiredServerError):
        async with mv.open_supervisor(spec) as client:
            core.fail_starts = 100
            core.crash()
            while True:
                # The host retries interruptions but lets ServerUnavailableError escape.
                with contextlib.suppress(mv.RequestInterruptedError):
                    await client.call_tool("core", "add", {"a": 1, "b": 1})


async def test_a_host_error_still_stops_every_server_in_order() -> None:
    fakes = [FakeServer(n) for n in ("a", "b", "c")]
    stopped: list[str] = []
    ended = trio.Event()

    async def watch(events: mv.Subscription) -> None:
        async for event in events:
            if isinstance(event, mv.LifecycleEvent) and event.new is S.STOPPED:
                stopped.append(event.server)
        ended.set()

    async with trio.open_nursery() as nursery:
        with pytest.raises(KeyError):
            async with mv.open_supervisor(
                mv.SupervisorSpec(servers=[f.spec() for f in fakes])
            ) as client:
                events = await nursery.start(_subscribed, client)
                nursery.start_soon(watch, events)
                raise KeyError("host bug")
        with trio.fail_after(10):
            await ended.wait()
        nursery.cancel_scope.cancel()
    assert stopped == ["c", "b", "a"]
    assert all(f.live == 0 for f in fakes)


async def _subscribed(
    client: mv.SupervisorClient, *, task_status: trio.TaskStatus[mv.Subscription]
) -> None:
    async with client.subscribe() as events:
        task_status.started(events)
        await trio.sleep_forever()


async def test_removing_a_server_that_never_started_is_immediate(autojump_clock: object) -> None:
    lazy = FakeServer("lazy")
    async with mv.open_supervisor(mv.SupervisorSpec(servers=[lazy.spec(start="lazy")])) as client:
        before = trio.current_time()
        await client.remove_server("lazy")
        assert trio.current_time() - before < 0.1
    assert lazy.sessions == 0


async def test_a_queued_request_never_runs_on_a_removed_server() -> None:
    a = FakeServer("a")
    outcomes: list[object] = []
    async with mv.open_supervisor(mv.SupervisorSpec(servers=[a.spec(max_concurrency=1)])) as client:

        async def call(tool: str) -> None:
            try:
                outcomes.append(await client.call_tool("a", tool, {"a": 1, "b": 2}))
            except mv.MCPVisorError as error:
                outcomes.append(error)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(call, "wait")
            await trio.testing.wait_all_tasks_blocked()
            nursery.start_soon(call, "add")
            await trio.testing.wait_all_tasks_blocked()
            await client.remove_server("a")
            a.release.set()
    assert a.calls == 1
    assert len(outcomes) == 2
    assert all(
        isinstance(o, mv.RequestInterruptedError | mv.ServerUnavailableError) for o in outcomes
    )


async def test_idle_servers_keep_their_tools_listed(autojump_clock: object) -> None:
    a = FakeServer("a")
    async with mv.open_supervisor(mv.SupervisorSpec(servers=[a.spec(idle_shutdown=5)])) as client:
        before = {t.qualified_name for t in await client.list_tools()}
        await until(client, state_is("a", S.STOPPED))
        after = await client.list_tools()
        assert {t.qualified_name for t in after} == before
        assert {t.state for t in after} == {S.STOPPED}


async def test_a_request_timeout_may_exceed_the_server_default(autojump_clock: object) -> None:
    a = FakeServer("a")
    short = mv.Timeouts(request=1, probe_interval=None)
    async with mv.open_supervisor(mv.SupervisorSpec(servers=[a.spec(timeouts=short)])) as client:

        async def release_later() -> None:
            await trio.sleep(3)
            a.release.set()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(release_later)
            result = await client.call_tool("a", "wait", {}, timeout=5)
        assert result.structured_content == {"result": "released"}
        a.release = trio.Event()
        with pytest.raises(mv.RequestTimeoutError):
            await client.call_tool("a", "wait", {})


async def test_add_server_after_close_is_a_typed_error() -> None:
    a = FakeServer("a")
    async with mv.open_supervisor(mv.SupervisorSpec(servers=[a.spec()])) as client:
        pass
    with pytest.raises(mv.ServerUnavailableError):
        await client.add_server(FakeServer("b").spec())
    with pytest.raises(mv.ServerUnavailableError):
        async with client.isolated("a"):
            pass
