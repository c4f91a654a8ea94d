"""Runtime control (restart, drop, revive, stop, add, remove) and on-demand sessions."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
import trio
import trio.lowlevel
import trio.testing

import mcpvisor as mv
from mcpvisor.supervisor.lifecycle import MANUAL
from tests.conftest import RAW_SERVER, descendants
from tests.supervisor.fakes import FakeServer
from tests.supervisor.support import state_is, until

S = mv.ServerState
LONG = mv.RestartPolicy(max_restarts=0 + 5, backoff=mv.Backoff(initial=30, max=30, jitter=0))
COMMANDS = {"restart": "RestartNow", "drop": "Drop", "revive": "Revive", "stop": "Stop"}


async def put_in(client: mv.SupervisorClient, fake: FakeServer, state: S) -> None:
    """Drive ``fake``'s server into ``state`` through real events."""
    name = fake.name
    if state is S.FAILED:
        fake.crash()
    elif state is S.DROPPED:
        await client.drop(name)
    elif state is S.STOPPED:
        await client.stop(name)
    elif state is S.STARTING:
        fake.hold_starts = trio.Event()
        await client.restart(name)
    await until(client, state_is(name, state))


@pytest.mark.parametrize("state", list(S), ids=lambda s: s.value)
@pytest.mark.parametrize("command", sorted(COMMANDS))
async def test_each_command_from_each_state_follows_the_table(
    command: str, state: S, autojump_clock: object
) -> None:
    fake = FakeServer("alpha")
    spec = mv.SupervisorSpec(servers=[fake.spec(restart=LONG)])
    async with mv.open_supervisor(spec) as client:
        await put_in(client, fake, state)
        allowed = MANUAL[COMMANDS[command]]
        async with client.subscribe() as events:
            if state in allowed:
                await getattr(client, command)("alpha")
                with trio.fail_after(60):
                    event = await events.__anext__()
                assert isinstance(event, mv.LifecycleEvent)
                assert (event.old, event.new) == (state, allowed[state])
                assert client.status().servers["alpha"].state is allowed[state]
            else:
                with pytest.raises(mv.CommandRefusedError, match="alpha") as info:
                    await getattr(client, command)("alpha")
                assert info.value.state is state
                assert client.status().servers["alpha"].state is state
                assert events.pending == 0
        if fake.hold_starts is not None:
            fake.hold_starts.set()


async def test_commands_on_unknown_servers_are_refused() -> None:
    fake = FakeServer("alpha")
    async with mv.open_supervisor(mv.SupervisorSpec(servers=[fake.spec()])) as client:
        for command in COMMANDS:
            with pytest.raises(mv.UnknownServerError, match="did you mean 'alpha'"):
                await getattr(client, command)("alpah")


async def test_revive_gives_a_fresh_budget(autojump_clock: object) -> None:
    fake = FakeServer("alpha", fail_starts=2)
    budget = mv.RestartPolicy(max_restarts=1, backoff=mv.Backoff(initial=1, max=1, jitter=0))
    async with mv.open_supervisor(mv.SupervisorSpec(servers=[fake.spec(restart=budget)])) as client:
        assert client.status().servers["alpha"].state is S.FAILED
        await until(client, state_is("alpha", S.DROPPED))
        await client.revive("alpha")
        status = await until(client, state_is("alpha", S.ACTIVE))
        assert status.servers["alpha"].restarts == 0
        assert fake.sessions == 3


async def test_restart_skips_backoff_and_costs_no_budget(autojump_clock: object) -> None:
    fake = FakeServer("alpha")
    spec = mv.SupervisorSpec(servers=[fake.spec(restart=LONG)])
    async with mv.open_supervisor(spec) as client:
        fake.crash()
        await until(client, state_is("alpha", S.FAILED))
        before = trio.current_time()
        await client.restart("alpha")
        await until(client, state_is("alpha", S.ACTIVE))
        assert trio.current_time() - before < 1
        await client.restart("alpha")
        status = await until(client, state_is("alpha", S.ACTIVE))
        assert status.servers["alpha"].restarts == 1
        assert fake.sessions == 3


async def test_drop_failed_servers_drops_exactly_the_failed_ones(autojump_clock: object) -> None:
    a, b, c = FakeServer("a"), FakeServer("b"), FakeServer("c")
    spec = mv.SupervisorSpec(servers=[f.spec(restart=LONG) for f in (a, b, c)])
    async with mv.open_supervisor(spec) as client:
        a.crash()
        c.crash()
        await until(client, lambda s: s.failed == ["a", "c"])
        assert await client.drop_failed_servers() == ["a", "c"]
        status = client.status()
        assert status.dropped == ["a", "c"] and status.active == ["b"]
        assert await client.drop_failed_servers() == []


async def test_add_server_returns_after_its_first_attempt() -> None:
    a, b = FakeServer("a"), FakeServer("b")
    broken = FakeServer("broken", fail_starts=10)
    async with mv.open_supervisor(mv.SupervisorSpec(servers=[a.spec()])) as client:
        status = await client.add_server(b.spec())
        assert status.state is S.ACTIVE
        assert (await client.call_tool("b__add", {"a": 1, "b": 2})).structured_content == {
            "result": 3
        }
        status = await client.add_server(broken.spec(restart=LONG))
        assert status.state is S.FAILED and broken.sessions == 1
        with pytest.raises(mv.CommandRefusedError, match="already supervised"):
            await client.add_server(FakeServer("a").spec())
        with pytest.raises(mv.ConfigError, match="group"):
            await client.add_server(FakeServer("d").spec(group="nope"))
        assert list(client.status().servers) == ["a", "b", "broken"]


async def test_remove_server_fails_waiting_requests(autojump_clock: object) -> None:
    a = FakeServer("a")
    async with mv.open_supervisor(mv.SupervisorSpec(servers=[a.spec(restart=LONG)])) as client:
        a.crash()
        await until(client, state_is("a", S.FAILED))
        errors: list[BaseException] = []

        async def waiter() -> None:
            try:
                await client.call_tool("a", "add", {"a": 1, "b": 1})
            except mv.ServerUnavailableError as error:
                errors.append(error)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(waiter)
            await trio.testing.wait_all_tasks_blocked()
            await client.remove_server("a")
        assert len(errors) == 1 and "removed" in str(errors[0])
        assert "a" not in client.status().servers
        with pytest.raises(mv.UnknownServerError):
            await client.call_tool("a", "add", {"a": 1, "b": 1})


async def test_add_and_remove_under_load_lose_no_request() -> None:
    fakes = {n: FakeServer(n) for n in ("a", "b")}
    spec = mv.SupervisorSpec(servers=[fakes["a"].spec()])
    outcomes: dict[str, int] = {}
    typed = (mv.ServerUnavailableError, mv.UnknownServerError, mv.RequestInterruptedError)

    async def hammer(client: mv.SupervisorClient, name: str) -> None:
        for _ in range(40):
            try:
                await client.call_tool(name, "add", {"a": 1, "b": 1}, timeout=10)
                key = "ok"
            except typed as error:
                key = type(error).__name__
            outcomes[key] = outcomes.get(key, 0) + 1
            await trio.lowlevel.checkpoint()

    async with mv.open_supervisor(spec) as client, trio.open_nursery() as nursery:
        for _ in range(5):
            nursery.start_soon(hammer, client, "a")
        await client.add_server(fakes["b"].spec())
        for _ in range(5):
            nursery.start_soon(hammer, client, "b")
        await trio.lowlevel.checkpoint()
        await client.remove_server("a")
    assert sum(outcomes.values()) == 400
    assert outcomes["ok"] >= 200


async def test_a_lazy_server_starts_on_its_first_request() -> None:
    spec = mv.SupervisorSpec(
        servers=[
            mv.StdioSpec(name="lazy", command=sys.executable, args=[str(RAW_SERVER)], start="lazy")
        ]
    )

    def raw_children() -> list[int]:
        return [
            pid
            for pid in descendants(os.getpid())
            if str(RAW_SERVER) in Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
        ]

    async with mv.open_supervisor(spec) as client:
        status = client.status().servers["lazy"]
        assert status.state is S.STOPPED and status.wakeable and status.pid is None
        assert raw_children() == []
        assert client.status().health == "healthy"
        result = await client.call_tool("lazy", "echo", {"text": "woke"})
        assert result.content[0].text == "woke"  # type: ignore[union-attr]
        assert raw_children() == [client.status().servers["lazy"].pid]


async def test_idle_shutdown_stops_and_the_next_request_restarts(autojump_clock: object) -> None:
    fake = FakeServer("alpha")
    spec = mv.SupervisorSpec(servers=[fake.spec(idle_shutdown=10)])
    async with mv.open_supervisor(spec) as client:
        await client.call_tool("alpha", "add", {"a": 1, "b": 1})
        started = trio.current_time()
        async with client.subscribe() as events:
            with trio.fail_after(60):
                async for event in events:
                    # Catalog refetches, had there been any, would speak too.
                    if isinstance(event, mv.LifecycleEvent) and event.kind == "state":
                        break
        assert (event.new, event.reason) == (S.STOPPED, "idle")
        assert event.at - started == pytest.approx(10, abs=0.1)
        await trio.testing.wait_all_tasks_blocked()
        assert fake.live == 0
        assert client.status().servers["alpha"].restarts == 0
        result = await client.call_tool("alpha", "add", {"a": 2, "b": 2})
        assert result.structured_content == {"result": 4}
        assert fake.sessions == 2 and fake.live == 1


async def test_a_busy_server_is_not_idle(autojump_clock: object) -> None:
    fake = FakeServer("alpha")
    spec = mv.SupervisorSpec(servers=[fake.spec(idle_shutdown=10)])
    async with mv.open_supervisor(spec) as client, trio.open_nursery() as nursery:
        nursery.start_soon(client.call_tool, "alpha", "wait", {})
        await trio.sleep(25)
        assert client.status().servers["alpha"].state is S.ACTIVE
        fake.release.set()


async def test_isolated_sessions_are_fresh_bounded_and_torn_down() -> None:
    fake = FakeServer("alpha")
    spec = mv.SupervisorSpec(servers=[fake.spec(max_isolated=3)])
    async with mv.open_supervisor(spec) as client:
        await client.call_tool("alpha", "bump", {})
        counts: list[int] = []

        async def use() -> None:
            async with client.isolated("alpha") as session:
                assert session.label in client.status().servers
                assert client.status().servers[session.label].isolated_of == "alpha"
                first = await session.call_tool("bump", {})
                second = await session.call_tool("bump", {})
                counts.append(first.structured_content["result"])  # type: ignore[index]
                counts.append(second.structured_content["result"])  # type: ignore[index]
                await trio.sleep(0.01)

        async with trio.open_nursery() as nursery:
            for _ in range(20):
                nursery.start_soon(use)
        assert counts.count(1) == 20 and counts.count(2) == 20
        assert fake.most_live == 1 + 3
        assert fake.live == 1
        assert list(client.status().servers) == ["alpha"]
        assert {t.server for t in await client.list_tools()} == {"alpha"}


async def test_an_isolated_session_is_torn_down_on_error() -> None:
    fake = FakeServer("alpha")
    async with mv.open_supervisor(mv.SupervisorSpec(servers=[fake.spec()])) as client:
        with pytest.raises(RuntimeError, match="inside"):
            async with client.isolated("alpha") as session:
                await session.call_tool("add", {"a": 1, "b": 2})
                assert fake.live == 2
                raise RuntimeError("inside the block")
        assert fake.live == 1
        assert list(client.status().servers) == ["alpha"]


async def test_isolated_sessions_emit_events() -> None:
    fake = FakeServer("alpha")
    async with mv.open_supervisor(mv.SupervisorSpec(servers=[fake.spec()])) as client:
        async with client.subscribe() as events, client.isolated("alpha") as session:
            label = session.label
        seen = []
        while events.pending:
            event = await events.__anext__()
            assert isinstance(event, mv.LifecycleEvent)
            if event.kind == "state":
                seen.append((event.server, event.new))
        assert seen == [(label, S.STARTING), (label, S.ACTIVE), (label, None)]


async def test_idle_shutdown_ends_the_server_process() -> None:
    spec = mv.SupervisorSpec(
        servers=[
            mv.StdioSpec(
                name="idle", command=sys.executable, args=[str(RAW_SERVER)], idle_shutdown=0.2
            )
        ]
    )
    async with mv.open_supervisor(spec) as client:
        pid = client.status().servers["idle"].pid
        assert pid is not None
        handle = os.pidfd_open(pid)
        try:
            status = await until(client, state_is("idle", S.STOPPED))
            assert status.servers["idle"].wakeable
            with trio.fail_after(30):
                await trio.lowlevel.wait_readable(handle)
        finally:
            os.close(handle)
        result = await client.call_tool("idle", "echo", {"text": "again"})
        assert result.content[0].text == "again"  # type: ignore[union-attr]
        assert client.status().servers["idle"].pid not in (None, pid)
