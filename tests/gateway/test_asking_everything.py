"""The real npm ``server-everything`` asks through the gateway, and its client answers.

server-everything offers ``trigger-sampling-request``, ``trigger-elicitation-request`` and
``get-roots-list`` only to a client that declares sampling, elicitation and roots: the
gateway's relay declares them downstream, and the gateway's client answers.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import mcp_types as types
import pytest
import trio
from mcp import Client
from mcp.client.session import ClientRequestContext

import mcpvisor as mv
from tests.gateway.support import GATEWAY_TIMEOUT, config_file, http_gateway
from tests.gateway.test_asking import Caller
from tests.gateway.test_everything import everything  # noqa: F401 - the fixture
from tests.gateway.test_stdio import serve


class EverythingCaller(Caller):
    def __init__(self) -> None:
        super().__init__()
        self.roots_asked = trio.Event()

    async def roots(self, context: ClientRequestContext) -> types.ListRootsResult:
        self.roots_asked.set()
        return await super().roots(context)

    async def elicitation(
        self, context: ClientRequestContext, params: types.ElicitRequestParams
    ) -> types.ElicitResult:
        self.asked.append("elicitation")
        return types.ElicitResult(action="accept", content={"name": "Ada Lovelace", "check": True})


def texts(result: types.CallToolResult) -> str:
    return " ".join(b.text for b in result.content if isinstance(b, types.TextContent))


async def exercise(client: Client, prefix: str, caller: Caller) -> None:
    names = {t.name for t in (await client.list_tools()).tools}
    conditional = {"trigger-sampling-request", "trigger-elicitation-request", "get-roots-list"}
    assert {prefix + n for n in conditional} <= names
    sampled = await client.call_tool(
        prefix + "trigger-sampling-request", {"prompt": "ping", "maxTokens": 10}
    )
    assert "client says Resource trigger-sampling-request context: ping" in texts(sampled)
    elicited = await client.call_tool(prefix + "trigger-elicitation-request", {})
    assert "Ada Lovelace" in texts(elicited), texts(elicited)
    roots = await client.call_tool(prefix + "get-roots-list", {})
    assert "file:///work/project" in texts(roots), texts(roots)
    assert "sampling Resource trigger-sampling-request context: ping" in caller.asked


@pytest.mark.timeout(900)  # a first run installs the package from npm
@pytest.mark.parametrize("mode", ["legacy", "2026-07-28"])
async def test_server_everything_asks_the_gateway_client_over_http(
    everything: mv.StdioSpec,  # noqa: F811
    mode: str,
) -> None:
    caller = EverythingCaller()
    with trio.fail_after(GATEWAY_TIMEOUT * 2):
        async with (
            http_gateway(mv.SupervisorSpec([everything])) as gw,
            Client(gw.mcp_url, mode=mode, **caller.callbacks()) as client,
        ):
            await exercise(client, "", caller)


@pytest.mark.timeout(900)
@pytest.mark.filterwarnings("ignore:The roots capability is deprecated")
async def test_server_everything_asks_a_stdio_gateway_client(
    everything: mv.StdioSpec,  # noqa: F811
    tmp_path: Path,
) -> None:
    """Over a stdio gateway even the roots it asks for at start, before any call, are the
    client's: the gateway waits for its one client and asks it."""
    caller = EverythingCaller()
    config: Any = config_file(tmp_path, mv.SupervisorSpec([everything]))
    with trio.fail_after(GATEWAY_TIMEOUT * 2):
        async with Client(serve(config), mode="legacy", **caller.callbacks()) as client:
            # Asked at the server's start, outside any call: it reaches this client anyway.
            await caller.roots_asked.wait()
            await exercise(client, "", caller)
