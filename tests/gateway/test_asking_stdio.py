"""``mcpvisor serve --stdio`` relays its servers' questions to its one client.

The gateway runs as a real subprocess, driven by the SDK's own stdio client; the downstream
is the server-to-client test server over a 2025-era stdio session, whose questions say
nothing of the call that caused them (unrouted): a stdio gateway has one client, so it is
the one asked.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import trio
from mcp import Client

import mcpvisor as mv
from tests.gateway.support import GATEWAY_TIMEOUT, config_file
from tests.gateway.test_asking import ERAS, Caller, s2c_stdio, text
from tests.gateway.test_stdio import serve


@pytest.mark.filterwarnings("ignore:The roots capability is deprecated")
@pytest.mark.parametrize("mode", ERAS)
async def test_a_stdio_gateway_asks_its_one_client(mode: str, tmp_path: Path) -> None:
    caller = Caller()
    config = config_file(tmp_path, mv.SupervisorSpec([s2c_stdio("legacy")]))
    with trio.fail_after(GATEWAY_TIMEOUT * 2):
        async with Client(serve(config), mode=mode, **caller.callbacks()) as client:
            sampled = await client.call_tool("ask_model", {"prompt": "over stdio"})
            assert text(sampled) == "client says over stdio"
            asked = await client.call_tool("ask_user", {"question": "q"})
            assert text(asked) == "accept:client-42"
            roots = await client.call_tool("roots", {})
            assert roots.structured_content == {"result": ["file:///work/project"]}
            if mode == "legacy":
                # The client's roots changed: the downstream server is told.
                await client.send_roots_list_changed()
                await _until_roots_changed(client)
    assert caller.asked == ["sampling over stdio", "elicitation q", "roots"]


async def _until_roots_changed(client: Client) -> None:
    with trio.fail_after(GATEWAY_TIMEOUT):
        while True:
            state: Any = (await client.call_tool("state", {})).structured_content
            if state and state.get("roots_changed", 0) >= 1:
                return
            # The notification travels through two processes: nothing here to wait on.
            await trio.sleep(0.05)
