"""Resource subscriptions and server log records through the gateway, with the SDK's Client.

The downstream is tests/s2c/s2c_server.py: ``touch(uri)`` says a subscribed resource changed,
``log(count, level)`` sends log records on its session's channel and ``log_here`` on the
request's, ``state()`` shows what the gateway subscribed to.
Over stdio with ``protocol="legacy"`` its records arrive outside any request (the unrouted
path); over streamable HTTP they arrive in the request's context (the routed path).
"""

from __future__ import annotations

import json
import os
import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import mcp_types as types
import pytest
import trio
from mcp import Client
from mcp.shared.exceptions import MCPError

import mcpvisor as mv
from tests.gateway.support import GATEWAY_TIMEOUT, Notices, http_gateway, raw, wait_for
from tests.s2c.support import S2C_SERVER, stdio_spec
from tests.workers.worker_helpers import http_server

COUNTER = "res://counter"

# The 2025-era client calls (resources/subscribe, logging/setLevel) are what is under test.
pytestmark = pytest.mark.filterwarnings("ignore::mcp.shared.exceptions.MCPDeprecationWarning")


class Logs:
    """Collects the log records an SDK client receives."""

    def __init__(self) -> None:
        self.records: list[types.LoggingMessageNotificationParams] = []
        self._changed = trio.Event()

    async def __call__(self, params: types.LoggingMessageNotificationParams) -> None:
        self.records.append(params)
        self._changed.set()
        self._changed = trio.Event()

    async def wait_for(self, count: int) -> None:
        with trio.fail_after(GATEWAY_TIMEOUT):
            while len(self.records) < count:
                await self._changed.wait()

    @property
    def lines(self) -> list[tuple[str, Any, str | None]]:
        return [(r.level, r.data, r.logger) for r in self.records]


def _text(result: types.CallToolResult) -> str:
    block = result.content[0]
    assert isinstance(block, types.TextContent)
    return block.text


async def _downstream_state(client: Client) -> dict[str, Any]:
    state: dict[str, Any] = json.loads(_text(await client.call_tool("s__state", {})))
    return state


@asynccontextmanager
async def _gateway(transport: str) -> AsyncIterator[Any]:
    """A gateway fronting the s2c server (``s``, over ``transport``) and a raw server."""
    if transport == "stdio":
        spec = mv.SupervisorSpec([stdio_spec("s", protocol="legacy"), raw()])
        async with http_gateway(spec) as gw:
            yield gw
        return
    async with http_server(S2C_SERVER, "streamable-http") as server:
        remote = mv.HttpSpec(name="s", url=server.url, protocol="legacy")
        async with http_gateway(mv.SupervisorSpec([remote, raw()])) as gw:
            yield gw


@pytest.mark.parametrize("transport", ["stdio", "http"])
async def test_a_subscription_delivers_updates_and_ends_with_its_connection(
    transport: str,
) -> None:
    async with _gateway(transport) as gw:
        notices = Notices()
        async with Client(gw.mcp_url, mode="legacy", message_handler=notices) as client:
            caps = client.server_capabilities
            assert caps.resources is not None and caps.resources.subscribe
            await client.subscribe_resource(COUNTER)
            assert gw.gateway.notices.held() == {("s", COUNTER)}
            assert (await _downstream_state(client))["subscribed"] == [COUNTER]
            touched = await client.call_tool("s__touch", {"uri": COUNTER})
            assert _text(touched) == "true"
            await notices.wait_for("notifications/resources/updated")
        # The client went away: its subscription goes with it, downstream too.
        await wait_for(lambda: not gw.gateway.notices.held())
        async with Client(gw.mcp_url, mode="legacy") as other:
            assert (await _downstream_state(other))["subscribed"] == []


async def test_subscriptions_are_counted_across_connections() -> None:
    async with _gateway("stdio") as gw:
        first, second = Notices(), Notices()
        async with (
            Client(gw.mcp_url, mode="legacy", message_handler=first) as a,
            Client(gw.mcp_url, mode="legacy", message_handler=second) as b,
        ):
            await a.subscribe_resource(COUNTER)
            await b.subscribe_resource(COUNTER)
            await a.subscribe_resource(COUNTER)  # twice from one connection is still one hold
            await a.unsubscribe_resource(COUNTER)
            # b still holds it: downstream stays subscribed and b hears the update.
            assert (await _downstream_state(b))["subscribed"] == [COUNTER]
            await b.call_tool("s__touch", {"uri": COUNTER})
            await second.wait_for("notifications/resources/updated")
            await b.unsubscribe_resource(COUNTER)
            assert gw.gateway.notices.held() == frozenset()
            assert (await _downstream_state(a))["subscribed"] == []
            assert _text(await a.call_tool("s__touch", {"uri": COUNTER})) == "false"
        assert "notifications/resources/updated" not in first.methods


async def test_subscribing_to_an_unknown_resource_is_an_invalid_params_error() -> None:
    async with _gateway("stdio") as gw, Client(gw.mcp_url, mode="legacy") as client:
        with pytest.raises(MCPError) as info:
            await client.subscribe_resource("nowhere://x")
        assert info.value.error.code == types.INVALID_PARAMS
        assert "Unknown resource: nowhere://x" in str(info.value)
        assert gw.gateway.notices.held() == frozenset()


async def test_a_2026_listen_stream_gets_updates_while_it_is_open() -> None:
    spec = mv.SupervisorSpec([stdio_spec("s"), raw()])
    async with (
        http_gateway(spec) as gw,
        Client(gw.mcp_url, mode="2026-07-28") as client,
    ):
        async with client.listen(resource_subscriptions=[COUNTER]) as sub:
            assert gw.gateway.notices.held() == {("s", COUNTER)}
            await client.call_tool("s__touch", {"uri": COUNTER})
            with trio.fail_after(GATEWAY_TIMEOUT):
                event = await sub.__anext__()
            assert getattr(event, "uri", None) == COUNTER
        await wait_for(lambda: not gw.gateway.notices.held())


async def test_unrouted_log_records_reach_each_connection_at_its_level() -> None:
    async with _gateway("stdio") as gw:
        quiet, chatty = Logs(), Logs()
        async with (
            Client(gw.mcp_url, mode="legacy", logging_callback=quiet) as a,
            Client(gw.mcp_url, mode="legacy", logging_callback=chatty) as b,
        ):
            await a.set_logging_level("error")
            await b.set_logging_level("debug")
            await b.call_tool("s__log", {"count": 2, "level": "info"})
            await chatty.wait_for(2)
            await b.call_tool("s__log", {"count": 1, "level": "error"})
            await quiet.wait_for(1)
            await chatty.wait_for(3)
        # Records go out in arrival order, so had ``a`` been sent the info ones, it would have
        # had them before the error one.
        assert quiet.lines == [("error", "line 0", "s__s2c")]
        assert chatty.lines == [
            ("info", "line 0", "s__s2c"),
            ("info", "line 1", "s__s2c"),
            ("error", "line 0", "s__s2c"),
        ]


async def test_routed_log_records_reach_only_the_caller_before_its_result() -> None:
    async with _gateway("http") as gw:
        caller, bystander = Logs(), Logs()
        async with (
            Client(gw.mcp_url, mode="legacy", logging_callback=caller) as a,
            Client(gw.mcp_url, mode="legacy", logging_callback=bystander) as b,
        ):
            await a.set_logging_level("debug")
            await b.set_logging_level("debug")
            await a.call_tool("s__log_here", {"count": 3, "level": "warning"})
            # Sent on the request's own stream, ahead of its result.
            assert [line for _, line, _ in caller.lines] == ["line 0", "line 1", "line 2"]
            await b.call_tool("s__log_here", {"count": 1, "level": "error"})
            assert bystander.lines == [("error", "line 0", "s__s2c")]
        assert len(caller.records) == 3


async def test_a_2026_client_gets_the_log_records_of_its_own_requests() -> None:
    async with _gateway("http") as gw:
        logs = Logs()
        async with Client(
            gw.mcp_url, mode="2026-07-28", logging_callback=logs, log_level="info"
        ) as client:
            await client.call_tool("s__log_here", {"count": 2, "level": "info"})
            assert [line for _, line, _ in logs.lines] == ["line 0", "line 1"]
            await client.call_tool("s__log_here", {"count": 1, "level": "debug"})
        # Below the level the request opted in to: never sent.
        assert len(logs.records) == 2


async def test_a_gateway_subscription_outlives_a_sigkill_of_the_server() -> None:
    async with _gateway("stdio") as gw:
        notices = Notices()
        async with Client(gw.mcp_url, mode="legacy", message_handler=notices) as client:
            await client.subscribe_resource(COUNTER)
            first = gw.client.status().servers["s"].pid
            assert first is not None
            os.kill(first, signal.SIGKILL)
            await wait_for(lambda: gw.client.status().servers["s"].pid not in (None, first))
            # The new process was subscribed again: its update reaches the gateway's client.
            assert (await _downstream_state(client))["subscribed"] == [COUNTER]
            await client.call_tool("s__touch", {"uri": COUNTER})
            await notices.wait_for("notifications/resources/updated")
            assert gw.gateway.notices.held() == {("s", COUNTER)}
