"""A reconfiguration that changes handlers: the new ones answer, in place where they can."""

from __future__ import annotations

from typing import Any

import mcp_types as types
import pytest
from mcp.shared.exceptions import MCPError

import mcpvisor as mv
from tests.s2c.support import stdio_spec
from tests.supervisor.support import until


def _answering(text: str) -> Any:
    async def sampling(
        ctx: mv.HandlerContext, params: types.CreateMessageRequestParams
    ) -> types.CreateMessageResult:
        return types.CreateMessageResult(
            role="assistant", content=types.TextContent(type="text", text=text), model="m"
        )

    return sampling


def _text(result: Any) -> str:
    return result.content[0].text  # type: ignore[no-any-return]


@pytest.mark.parametrize("protocol", ["legacy", "2026-07-28"])
async def test_reconfigured_handlers_answer_and_only_a_new_capability_restarts(
    protocol: str,
) -> None:
    server = stdio_spec(protocol=protocol)
    spec = mv.SupervisorSpec([server], handlers=mv.ClientHandlers(sampling=_answering("old")))
    async with mv.open_supervisor(spec) as client:
        assert _text(await client.call_tool("s2c", "ask_model", {"prompt": "hi"})) == "old"
        pid = client.status().servers["s2c"].pid

        swapped = mv.SupervisorSpec(
            [server], handlers=mv.ClientHandlers(sampling=_answering("new"))
        )
        report = await client.reconfigure(swapped)
        assert report.updated == ("s2c",) and report.fields["s2c"] == ("handlers",)
        assert _text(await client.call_tool("s2c", "ask_model", {"prompt": "hi"})) == "new"
        assert client.status().servers["s2c"].pid == pid

        without = mv.SupervisorSpec(
            [stdio_spec(protocol=protocol, handlers=mv.ClientHandlers(disabled={"sampling"}))],
            handlers=mv.ClientHandlers(sampling=_answering("new")),
        )
        report = await client.reconfigure(without)
        assert report.restarted == ("s2c",)
        await until(
            client,
            lambda s: (
                s.servers["s2c"].state is mv.ServerState.ACTIVE and s.servers["s2c"].pid != pid
            ),
        )
        with pytest.raises(MCPError, match="sampling"):
            await client.call_tool("s2c", "ask_model", {"prompt": "hi"})
