"""Resource subscriptions and roots are the session's state, and supervision restores them.

The host subscribes once; every later session of the server (after a SIGKILL and a restart)
is subscribed again by mcpvisor before it is reported ready. Roots changed by the host reach
every live session.
"""

from __future__ import annotations

import os
import signal

import pytest
import trio

import mcpvisor as mv
from mcpvisor.specs import UsageError
from tests.s2c.support import json_of, stdio_spec
from tests.supervisor.support import until

ERAS = ["legacy", "2026-07-28"]


async def _next_update(updates: object, limit: float = 30.0) -> mv.ResourceUpdated:
    with trio.fail_after(limit):
        async for update in updates:  # type: ignore[attr-defined]
            return update  # type: ignore[no-any-return]
    raise AssertionError("the feed ended")


@pytest.mark.parametrize("protocol", ERAS)
async def test_a_subscription_delivers_updates_and_survives_a_kill(protocol: str) -> None:
    spec = mv.SupervisorSpec([stdio_spec(protocol=protocol)])
    async with mv.open_supervisor(spec) as client, client.resource_updates() as updates:
        await client.subscribe_resource("s2c", "res://counter")

        async def touch_until_update() -> mv.ResourceUpdated:
            # The 2026 listen stream opens in the background: touch until it delivers.
            with trio.fail_after(30):
                while True:
                    await client.call_tool("s2c", "touch", {"uri": "res://counter"})
                    with trio.move_on_after(0.5):
                        return await _next_update(updates)

        first = await touch_until_update()
        assert (first.server, first.session, first.uri) == ("s2c", "s2c", "res://counter")
        # One change is one update: the SDK delivers a 2026 update both as a notification and
        # on the listen stream, and a second copy of the first would come before this one.
        await client.subscribe_resource("s2c", "res://other")
        with trio.fail_after(30):
            while True:
                await client.call_tool("s2c", "touch", {"uri": "res://other"})
                with trio.move_on_after(0.5):
                    following = await _next_update(updates)
                    break
        assert following.uri == "res://other"
        await client.unsubscribe_resource("s2c", "res://other")
        if protocol == "legacy":
            assert json_of(await client.call_tool("s2c", "state", {}))["subscribed"] == [
                "res://counter"
            ]
        pid = client.status().servers["s2c"].pid
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        await until(
            client,
            lambda s: (
                s.servers["s2c"].state is mv.ServerState.ACTIVE
                and s.servers["s2c"].pid not in (None, pid)
            ),
        )
        if protocol == "legacy":
            # Subscribed again before the new session was reported ready.
            assert json_of(await client.call_tool("s2c", "state", {}))["subscribed"] == [
                "res://counter"
            ]
        again = await touch_until_update()
        assert again.uri == "res://counter"

        await client.unsubscribe_resource("s2c", "res://counter")
        if protocol == "legacy":
            await wait_for_state(client, lambda st: st["subscribed"] == [])
            assert not json_of(await client.call_tool("s2c", "touch", {"uri": "res://counter"}))


@pytest.mark.parametrize("protocol", ERAS)
async def test_a_change_made_after_subscribe_returns_is_reported(protocol: str) -> None:
    # subscribe_resource returns once the live session has the subscription in effect, so
    # the first change after it is reported: no touching until the stream happens to be open.
    spec = mv.SupervisorSpec([stdio_spec(protocol=protocol)])
    async with mv.open_supervisor(spec) as client, client.resource_updates() as updates:
        for uri in ("res://counter", "res://other", "res://third"):
            await client.subscribe_resource("s2c", uri)
            await client.call_tool("s2c", "touch", {"uri": uri})
            update = await _next_update(updates, limit=10)
            assert update.uri == uri
        await client.set_logging_level("s2c", "warning")
        await client.unsubscribe_resource("s2c", "res://other")
        if protocol == "legacy":
            state = json_of(await client.call_tool("s2c", "state", {}))
            assert state["subscribed"] == ["res://counter", "res://third"]
            assert state["level"] == "warning"


async def test_a_2026_session_listens_again_after_its_last_subscription_went() -> None:
    # The session's following task ends when no subscription is left to hold; the next
    # subscription must start it again on the same live session.
    spec = mv.SupervisorSpec([stdio_spec(protocol="2026-07-28")])
    async with mv.open_supervisor(spec) as client, client.resource_updates() as updates:
        pid = client.status().servers["s2c"].pid
        for uri in ("res://counter", "res://other"):
            await client.subscribe_resource("s2c", uri)
            with trio.fail_after(30):
                while True:
                    await client.call_tool("s2c", "touch", {"uri": uri})
                    with trio.move_on_after(0.5):
                        update = await _next_update(updates)
                        if update.uri == uri:
                            break
            await client.unsubscribe_resource("s2c", uri)
        assert client.status().servers["s2c"].pid == pid


async def wait_for_state(client: mv.SupervisorClient, ok: object) -> None:
    with trio.fail_after(30):
        while not ok(json_of(await client.call_tool("s2c", "state", {}))):  # type: ignore[operator]  # noqa: ASYNC110
            await trio.sleep(0.05)


async def test_subscribing_to_a_server_without_subscriptions_is_a_usage_error() -> None:
    import sys

    from tests.conftest import MCP_SERVER

    spec = mv.SupervisorSpec(
        [
            mv.StdioSpec(
                name="plain", command=sys.executable, args=[str(MCP_SERVER)], protocol="legacy"
            )
        ]
    )
    async with mv.open_supervisor(spec) as client:
        with pytest.raises(UsageError) as caught:
            await client.subscribe_resource("plain", "res://x")
    assert caught.value.server == "plain"
    with pytest.raises(mv.ConfigError, match=r"handlers\.roots"):
        mv.ClientHandlers(roots=["https://not-a-file"])


async def test_roots_changes_reach_every_live_session_and_restarts() -> None:
    spec = mv.SupervisorSpec(
        [stdio_spec("a", protocol="legacy"), stdio_spec("b", protocol="legacy")],
        handlers=mv.ClientHandlers(roots=["file:///first"]),
    )
    async with mv.open_supervisor(spec) as client:
        assert json_of(await client.call_tool("a", "roots", {})) == ["file:///first"]
        await client.set_roots(["file:///second", "file:///third"])
        for name in ("a", "b"):
            await wait_for_state_of(client, name, lambda st: st["roots_changed"] == 1)
            roots = json_of(await client.call_tool(name, "roots", {}))
            assert roots == ["file:///second", "file:///third"]
        await client.set_roots(["file:///only-b"], server="b")
        await wait_for_state_of(client, "b", lambda st: st["roots_changed"] == 2)
        assert json_of(await client.call_tool("a", "state", {}))["roots_changed"] == 1
        # A restarted session gets the current roots, not the configured ones.
        await client.restart("b")
        await until(client, lambda s: s.servers["b"].state is mv.ServerState.ACTIVE)
        assert json_of(await client.call_tool("b", "roots", {})) == ["file:///only-b"]
        with pytest.raises(UsageError):
            await client.set_roots("file:///not-a-list")


async def wait_for_state_of(client: mv.SupervisorClient, name: str, ok: object) -> None:
    with trio.fail_after(30):
        while not ok(json_of(await client.call_tool(name, "state", {}))):  # type: ignore[operator]  # noqa: ASYNC110
            await trio.sleep(0.05)


async def test_set_logging_level_is_sent_now_and_after_restarts() -> None:
    spec = mv.SupervisorSpec([stdio_spec(protocol="legacy")])
    async with mv.open_supervisor(spec) as client:
        assert json_of(await client.call_tool("s2c", "state", {}))["level"] is None
        await client.set_logging_level("s2c", "error")
        await wait_for_state(client, lambda st: st["level"] == "error")
        await client.restart("s2c")
        await until(
            client,
            lambda s: (
                s.servers["s2c"].restarts >= 0 and s.servers["s2c"].state is mv.ServerState.ACTIVE
            ),
        )
        await wait_for_state(client, lambda st: st["level"] == "error")
        with pytest.raises(UsageError):
            await client.set_logging_level("s2c", "loud")  # type: ignore[arg-type]
