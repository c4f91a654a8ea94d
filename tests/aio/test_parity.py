"""The asyncio handle does what the Trio handle does, under both runners and both loops."""

from __future__ import annotations

import contextvars
import json
from pathlib import Path
from typing import Any

import pytest
from aio_support import LOOPS, RUNNERS, Leftovers, gather_pid, recording_spec, run

import mcpvisor as mv
import mcpvisor.aio

tenant = contextvars.ContextVar[str]("tenant", default="nobody")


class Seen(mv.Hooks):
    """Records each request as it starts, with the caller's context variable."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str, str]] = []

    def request_started(self, call: Any) -> None:
        self.seen.append((call.server, call.op, tenant.get()))


@pytest.mark.parametrize("loop", LOOPS)
@pytest.mark.parametrize("runner", RUNNERS)
def test_requests_listings_control_and_events(
    tmp_path: Path, runner: mcpvisor.aio.Runner, loop: str, procs: Any
) -> None:
    record = tmp_path / "record"
    spec = mv.SupervisorSpec(servers=[recording_spec(record), recording_spec(record, "spare")])
    hooks = Seen()

    async def main() -> None:
        left = Leftovers()
        pids: list[int] = []
        tenant.set("alice")
        async with mcpvisor.aio.open_supervisor(spec, runner=runner, hooks=hooks) as client:
            assert isinstance(client, mcpvisor.aio.SupervisorClient)
            names = [t.qualified_name for t in await client.list_tools()]
            assert names == [
                f"{s}__{t}"
                for s in ("rec", "spare")
                for t in ("echo", "pid", "hang", "fail", "meta")
            ]
            result = await client.call_tool("rec__echo", {"text": "hi"})
            assert result.content[0].text == "hi"
            result = await client.call_tool("rec", "fail", {})
            assert result.is_error
            resources = [(s, r.name) for s, r in await client.list_resources()]
            assert resources == [("rec", "note"), ("spare", "note")]
            prompts = [(s, p.name) for s, p in await client.list_prompts()]
            assert prompts == [("rec", "greet"), ("spare", "greet")]
            read = await client.read_resource("rec", "mem://note")
            assert read.contents[0].text == "hello"
            prompt = await client.get_prompt("rec", "greet", {"name": "ada"})
            assert prompt.messages[0].content.text == "hello ada"
            templates = await client.request("rec", "list_resource_templates")
            assert list(templates.resource_templates) == []
            assert await client.list_resource_templates() == []
            catalog = client.catalog("rec")
            assert [t.name for t in catalog.tools][:2] == ["echo", "pid"]
            assert [r.uri for r in catalog.resources] == ["mem://note"]
            with pytest.raises(mv.UnknownServerError):
                client.catalog("nope")
            sent = await client.call_tool("rec", "meta", {}, meta={"tenant": "acme"})
            assert json.loads(sent.content[0].text)["tenant"] == "acme"
            assert hooks.seen[-1] == ("rec", "call_tool", "alice")

            with pytest.raises(mv.UnknownServerError) as unknown:
                await client.call_tool("recc", "echo", {})
            assert unknown.value.suggestion == "rec"
            with pytest.raises(mv.UnknownToolError):
                await client.call_tool("rec", "ecco", {})

            status = client.status()
            assert status.health == "healthy"
            assert status.active == ["rec", "spare"]
            first = await gather_pid(client)
            pids.append(first)
            assert status.servers["rec"].pid == first

            async with client.subscribe() as events:
                await client.restart("rec")
                seen = []
                async for event in events:
                    assert isinstance(event, mv.LifecycleEvent)
                    seen.append((event.server, event.new))
                    if event.new is mv.ServerState.ACTIVE:
                        break
            assert seen == [("rec", mv.ServerState.STARTING), ("rec", mv.ServerState.ACTIVE)]
            second = await gather_pid(client)
            pids.append(second)
            assert second != first

            await client.stop("spare")
            assert client.status().servers["spare"].state is mv.ServerState.STOPPED
            with pytest.raises(mv.ServerUnavailableError):
                await client.call_tool("spare", "echo", {})
            with pytest.raises(mv.CommandRefusedError):
                await client.stop("spare")
            await client.revive("spare")
            await client.drop("spare")
            assert client.status().dropped == ["spare"]
            assert await client.drop_failed_servers() == []

            added = await client.add_server(recording_spec(record, "extra"))
            assert added.state is mv.ServerState.ACTIVE
            pids.append(await gather_pid(client, "extra"))
            await client.remove_server("extra")
            assert "extra" not in client.status().servers

            async with client.isolated("rec") as session:
                assert session.label.startswith("rec~")
                assert client.status().servers[session.label].isolated_of == "rec"
                pids.append(int((await session.call_tool("pid", {})).content[0].text))
                tools = [t.name for t in await session.list_tools()]
                assert tools == ["echo", "pid", "hang", "fail", "meta"]
                assert [t.name for t in session.catalog().tools] == tools
                assert await session.list_resource_templates() == []
                probe = await session.request("list_prompts")
                assert [p.name for p in probe.prompts] == ["greet"]
                assert (await session.read_resource("mem://note")).contents[0].text == "hello"
            assert session.label not in client.status().servers
            with pytest.raises(mv.UnknownServerError):
                async with client.isolated("nope"):
                    raise AssertionError("unreachable")
        await left.check(procs, pids)
        with pytest.raises(mv.ServerUnavailableError):
            await client.call_tool("rec", "echo", {})
        assert client.status().servers["rec"].state is mv.ServerState.STOPPED

    run(main(), loop)
