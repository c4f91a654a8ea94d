"""The gateway over streamable HTTP with the SDK's own client, both protocol eras."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path
from typing import Any

import httpx2
import mcp_types as types
import pytest
import trio
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError

import mcpvisor as mv
from mcpvisor.gateway import GatewayOptions, HttpSettings, ToolFilter
from mcpvisor.specs import UsageError
from tests.gateway.support import (
    GATEWAY_TIMEOUT,
    Notices,
    Running,
    downstream,
    http_gateway,
    raw,
    wait_for,
)

ERAS = ["legacy", "2026-07-28"]
FILTERED = GatewayOptions(tools={"d": ToolFilter(deny=("secret",))})


def two_servers(**d_fields: object) -> mv.SupervisorSpec:
    return mv.SupervisorSpec(servers=[downstream(**d_fields), raw()])  # type: ignore[arg-type]


@pytest.mark.parametrize("mode", ERAS)
async def test_lists_and_calls_through_the_gateway(mode: str) -> None:
    async with http_gateway(two_servers(), FILTERED) as gw, Client(gw.mcp_url, mode=mode) as client:
        names = {t.name for t in (await client.list_tools()).tools}
        assert {"d__add", "d__slow", "d__block", "r__echo", "r__hang"} <= names
        assert "d__secret" not in names
        result = await client.call_tool("d__add", {"a": 2, "b": 40})
        assert result.structured_content == {"result": 42}
        echoed = await client.call_tool("r__echo", {"text": "hi"})
        assert echoed.content[0].text == "hi"  # type: ignore[union-attr]
        with pytest.raises(MCPError, match="Unknown tool: d__secret"):
            await client.call_tool("d__secret", {})
        with pytest.raises(MCPError, match="Unknown tool"):
            await client.call_tool("nobody__add", {})


@pytest.mark.parametrize("mode", ERAS)
async def test_resources_prompts_and_completion_pass_through(mode: str) -> None:
    async with http_gateway(two_servers()) as gw, Client(gw.mcp_url, mode=mode) as client:
        resources = (await client.list_resources()).resources
        assert [str(r.uri) for r in resources] == ["note://hello"]
        read = await client.read_resource("note://hello")
        assert read.contents[0].text == "hello world"  # type: ignore[union-attr]
        prompts = (await client.list_prompts()).prompts
        assert [p.name for p in prompts] == ["d__explain"]
        prompt = await client.get_prompt("d__explain", {"topic": "trio"})
        assert "Explain trio." in prompt.messages[0].content.text  # type: ignore[union-attr]
        done = await client.complete(
            types.PromptReference(name="d__explain"), {"name": "topic", "value": "tr"}
        )
        assert done.completion.values == ["trio", "triangles"]


@pytest.mark.parametrize("mode", ERAS)
async def test_progress_and_meta_reach_the_other_side(mode: str) -> None:
    async with http_gateway(two_servers()) as gw, Client(gw.mcp_url, mode=mode) as client:
        seen: list[tuple[float, float | None, str | None]] = []

        async def progress(value: float, total: float | None, message: str | None) -> None:
            seen.append((value, total, message))

        result = await client.call_tool("d__slow", {"steps": 3}, progress_callback=progress)
        assert result.content[0].text == "done"  # type: ignore[union-attr]
        assert seen == [(1, 3, "step 1"), (2, 3, "step 2"), (3, 3, "step 3")]
        echoed = await client.call_tool("d__echo_meta", {}, meta={"trace": "abc"})
        meta = json.loads(echoed.content[0].text)  # type: ignore[union-attr]
        assert meta.get("trace") == "abc"


@pytest.mark.parametrize("mode", ERAS)
async def test_a_cancelled_call_is_cancelled_downstream(mode: str, tmp_path: Path) -> None:
    marker = tmp_path / "cancelled"
    spec = mv.SupervisorSpec(servers=[downstream(marker=marker)])
    async with http_gateway(spec) as gw, Client(gw.mcp_url, mode=mode) as client:
        arrived = trio.Event()

        async def progress(value: float, total: float | None, message: str | None) -> None:
            arrived.set()

        async with trio.open_nursery() as nursery:

            async def call() -> None:
                await client.call_tool("block", {"tag": mode}, progress_callback=progress)

            nursery.start_soon(call)
            with trio.fail_after(GATEWAY_TIMEOUT):
                await arrived.wait()
            nursery.cancel_scope.cancel()
        await wait_for(lambda: marker.exists() and f"cancelled {mode}" in marker.read_text())
        # The session is still good after the cancellation.
        assert (await client.call_tool("add", {"a": 1, "b": 1})).structured_content == {"result": 2}


async def test_sigkill_downstream_tells_legacy_clients_out_and_back_in() -> None:
    async with http_gateway(two_servers()) as gw:
        notices = Notices()
        async with Client(gw.mcp_url, mode="legacy", message_handler=notices) as client:
            # The SDK's client opens its standalone stream after the handshake and what is sent
            # before that is lost; a first notice seen proves the stream is open.
            await stream_open(gw, notices)
            pid = gw.client.status().servers["r"].pid
            assert pid is not None
            os.kill(pid, signal.SIGKILL)
            await notices.wait_for("notifications/tools/list_changed", 1)
            await wait_for(lambda: gw.client.status().servers["r"].state is mv.ServerState.ACTIVE)
            await notices.wait_for("notifications/tools/list_changed", 2)
            names = {t.name for t in (await client.list_tools(cache_mode="refresh")).tools}
            assert "r__echo" in names and "d__add" in names


async def stream_open(gw: Running, notices: Notices) -> None:
    with trio.fail_after(GATEWAY_TIMEOUT):
        while not notices.methods:
            await gw.gateway.announce(frozenset({"tools"}))
            with trio.move_on_after(0.2):
                await notices.wait_for("notifications/tools/list_changed")
    notices.methods.clear()


async def test_sigkill_downstream_reaches_modern_listeners() -> None:
    async with (
        http_gateway(two_servers()) as gw,
        Client(gw.mcp_url, mode="2026-07-28") as client,
        client.listen(tools_list_changed=True) as events,
    ):
        pid = gw.client.status().servers["r"].pid
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        with trio.fail_after(GATEWAY_TIMEOUT):
            await events.__anext__()
            without = {t.name for t in (await client.list_tools(cache_mode="bypass")).tools}
            if "r__echo" in without:  # already back: the second event is the same news
                return
            await events.__anext__()
        names = {t.name for t in (await client.list_tools(cache_mode="bypass")).tools}
        assert "r__echo" not in without and "r__echo" in names


async def test_a_downstream_list_change_reaches_the_client() -> None:
    async with http_gateway(two_servers()) as gw:
        notices = Notices()
        async with Client(gw.mcp_url, mode="legacy", message_handler=notices) as client:
            await stream_open(gw, notices)
            await client.call_tool("d__grow", {})
            await notices.wait_for("notifications/tools/list_changed")
            names = {t.name for t in (await client.list_tools(cache_mode="refresh")).tools}
            assert "d__extra" in names


async def test_readiness_follows_required_servers() -> None:
    spec = mv.SupervisorSpec(servers=[raw("r", required=False), raw("opt", required=False)])
    async with http_gateway(spec, required=["r"]) as gw, httpx2.AsyncClient() as http:
        assert (await http.get(f"{gw.url}/healthz")).status_code == 200
        ready = await http.get(f"{gw.url}/readyz")
        assert ready.status_code == 200 and ready.json() == {"ready": True, "waiting_for": []}
        await gw.client.drop("opt")
        assert (await http.get(f"{gw.url}/readyz")).status_code == 200
        await gw.client.drop("r")
        await wait_for(lambda: gw.client.status().servers["r"].state is mv.ServerState.DROPPED)
        unready = await http.get(f"{gw.url}/readyz")
        assert unready.status_code == 503 and unready.json()["waiting_for"] == ["r"]
        assert (await http.get(f"{gw.url}/healthz")).status_code == 200
        await gw.client.revive("r")
        await wait_for(lambda: gw.client.status().servers["r"].state is mv.ServerState.ACTIVE)
        assert (await http.get(f"{gw.url}/readyz")).status_code == 200
        status = (await http.get(f"{gw.url}/status")).json()
        assert status["servers"]["r"]["state"] == "active"
        assert status["gateway"]["namespaced"] is True


async def test_a_bearer_token_guards_everything_but_the_probes() -> None:
    spec = mv.SupervisorSpec(servers=[raw()])
    settings = HttpSettings(token="s3cret-token")
    async with http_gateway(spec, settings=settings) as gw, httpx2.AsyncClient() as http:
        assert (await http.get(f"{gw.url}/healthz")).status_code == 200
        assert (await http.get(f"{gw.url}/readyz")).status_code == 200
        assert (await http.get(f"{gw.url}/status")).status_code == 401
        bad = {"Authorization": "Bearer wrong"}
        assert (await http.get(f"{gw.url}/status", headers=bad)).status_code == 401
        good = {"Authorization": "Bearer s3cret-token"}
        assert (await http.get(f"{gw.url}/status", headers=good)).status_code == 200
        async with httpx2.AsyncClient(headers=bad) as wrong:
            with pytest.raises(Exception):  # noqa: B017 - the SDK's error type for a 401 varies
                async with Client(streamable_http_client(gw.mcp_url, http_client=wrong)) as c:
                    await c.list_tools()
        async with (
            httpx2.AsyncClient(headers=good) as right,
            Client(streamable_http_client(gw.mcp_url, http_client=right)) as c,
        ):
            assert "echo" in {t.name for t in (await c.list_tools()).tools}


async def test_dns_rebinding_and_body_limits() -> None:
    spec = mv.SupervisorSpec(servers=[raw()])
    settings = HttpSettings(max_body_bytes=2048)
    async with http_gateway(spec, settings=settings) as gw, httpx2.AsyncClient() as http:
        body = {"jsonrpc": "2.0", "id": 1, "method": "ping"}
        headers = {"Accept": "application/json, text/event-stream"}
        rebound = await http.post(
            gw.mcp_url, json=body, headers={**headers, "Host": "evil.example:80"}
        )
        assert rebound.status_code == 421
        foreign = await http.post(
            gw.mcp_url, json=body, headers={**headers, "Origin": "http://evil.example"}
        )
        assert foreign.status_code == 403
        huge = {**body, "params": {"pad": "x" * 4096}}
        assert (await http.post(gw.mcp_url, json=huge, headers=headers)).status_code == 413


def test_a_public_bind_needs_a_token_or_insecure() -> None:
    with pytest.raises(UsageError, match="needs a bearer token"):
        HttpSettings(host="0.0.0.0")
    assert HttpSettings(host="0.0.0.0", token="t").token == "t"
    assert HttpSettings(host="0.0.0.0", insecure=True).insecure
    assert "t0ken" not in repr(HttpSettings(host="0.0.0.0", token="t0ken"))


async def test_a_metrics_app_is_mounted_behind_the_token() -> None:
    from starlette.responses import PlainTextResponse

    class Metrics:
        async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
            await PlainTextResponse("mcpvisor_up 1\n")(scope, receive, send)

    spec = mv.SupervisorSpec(servers=[raw()])
    settings = HttpSettings(token="t0k3n")
    async with (
        http_gateway(spec, settings=settings, metrics_app=Metrics()) as gw,
        httpx2.AsyncClient() as http,
    ):
        assert (await http.get(f"{gw.url}/metrics")).status_code == 401
        scraped = await http.get(f"{gw.url}/metrics", headers={"Authorization": "Bearer t0k3n"})
        assert scraped.status_code == 200 and scraped.text == "mcpvisor_up 1\n"


async def test_a_call_to_a_restarting_server_waits_for_it() -> None:
    async with http_gateway(two_servers()) as gw:
        notices = Notices()
        async with Client(gw.mcp_url, mode="legacy", message_handler=notices) as client:
            await stream_open(gw, notices)
            pid = gw.client.status().servers["r"].pid
            assert pid is not None
            os.kill(pid, signal.SIGKILL)
            await notices.wait_for("notifications/tools/list_changed", 1)
            assert gw.client.status().servers["r"].state is not mv.ServerState.ACTIVE
            result = await client.call_tool("r__echo", {"text": "waited"})
            assert not result.is_error
            assert result.content[0].text == "waited"  # type: ignore[union-attr]
