"""Reconfiguring real subprocess servers: unchanged ones keep their process and their calls."""

from __future__ import annotations

import sys

import attrs
import pytest
import trio

import mcpvisor as mv
from tests.conftest import MCP_SERVER
from tests.supervisor.support import QUICK, state_is, until
from tests.supervisor.test_supervisor_stdio import TIMEOUTS, alive, raw


def slow(name: str, **kwargs: object) -> mv.StdioSpec:
    return mv.StdioSpec(
        name=name,
        command=sys.executable,
        args=(str(MCP_SERVER),),
        timeouts=TIMEOUTS,
        restart=QUICK,
        **kwargs,  # type: ignore[arg-type]
    )


async def test_only_the_changed_server_restarts_and_calls_in_flight_elsewhere_complete() -> None:
    old = mv.SupervisorSpec(servers=[slow("keep"), raw("change"), raw("gone"), raw("tune")])
    async with mv.open_supervisor(old) as client:
        before = {n: s.pid for n, s in client.status().servers.items()}
        assert all(before.values())
        arrived = trio.Event()
        results: list[str] = []

        async def on_progress(*_: object) -> None:
            arrived.set()

        async def slow_call() -> None:
            result = await client.call_tool("keep", "sleep", {"seconds": 3}, progress=on_progress)
            results.append(result.content[0].text)  # type: ignore[union-attr]

        new = mv.SupervisorSpec(
            servers=[
                raw("added"),
                slow("keep"),
                raw("change", "--v2", env={"TOKEN": "sentinel-secret"}),
                raw("tune", restart=attrs.evolve(QUICK, max_restarts=9)),
            ]
        )
        with trio.fail_after(90):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(slow_call)
                await arrived.wait()
                report = await client.reconfigure(new)
        assert results == ["slept"]
        assert report.added == ("added",) and report.removed == ("gone",)
        assert report.restarted == ("change",) and report.updated == ("tune",)
        assert report.unchanged == ("keep",) and not report.reordered
        assert report.fields["change"] == ("args", "env")
        assert "sentinel-secret" not in repr(report) + report.summary()
        status = await until(client, state_is("change", mv.ServerState.ACTIVE))
        after = {n: s.pid for n, s in status.servers.items()}
        assert list(after) == ["added", "keep", "change", "tune"]
        assert after["keep"] == before["keep"] and after["tune"] == before["tune"]
        assert after["change"] not in (None, before["change"])
        assert not alive(before["change"]) and not alive(before["gone"])  # type: ignore[arg-type]
        echoed = await client.call_tool("added", "echo", {"text": "hi"})
        assert echoed.content[0].text == "hi"  # type: ignore[union-attr]


async def test_a_spec_that_cannot_apply_changes_nothing_and_is_reported() -> None:
    old = mv.SupervisorSpec(servers=[raw("one")], groups={"g": "one_for_all"})
    async with mv.open_supervisor(old) as client:
        pid = client.status().servers["one"].pid
        bad = mv.SupervisorSpec(
            servers=[raw("one", "--v2"), raw("two", group="g")], groups={"g": "one_for_all"}
        )
        object.__setattr__(bad, "groups", {})  # around the validators, as no loader would
        async with client.subscribe() as events:
            with pytest.raises(mv.ConfigError) as info:
                await client.reconfigure(bad)
            assert info.value.paths == ("servers.two.group",)
            event = await events.__anext__()
        assert isinstance(event, mv.LifecycleEvent)
        assert (event.server, event.kind, event.reason) == ("*", "reload", "rejected")
        assert "unknown group 'g'" in (event.cause or "")
        status = client.status()
        assert list(status.servers) == ["one"] and status.servers["one"].pid == pid
        with pytest.raises(mv.MCPVisorError):
            await client.reconfigure("not a spec")  # type: ignore[arg-type]
        assert client.status().servers["one"].pid == pid
