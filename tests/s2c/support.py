"""Helpers for the server-to-client tests: the test server's specs and recording handlers."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import mcp_types as types
import trio

import mcpvisor as mv

S2C_SERVER = Path(__file__).parent / "s2c_server.py"

QUICK = mv.RestartPolicy(
    max_restarts=5, within=60, backoff=mv.Backoff(initial=0.05, max=0.2, jitter=0.0)
)


def stdio_spec(name: str = "s2c", **kwargs: Any) -> mv.StdioSpec:
    return mv.StdioSpec(
        name=name, command=sys.executable, args=[str(S2C_SERVER)], restart=QUICK, **kwargs
    )


class Recorder:
    """Handlers that answer fixed things and remember who asked."""

    def __init__(self, tag: str = "host") -> None:
        self.tag = tag
        self.asked: list[tuple[str, mv.HandlerContext]] = []
        self.logs: list[mv.ServerLog] = []

    async def sampling(
        self, ctx: mv.HandlerContext, params: types.CreateMessageRequestParams
    ) -> types.CreateMessageResult:
        self.asked.append(("sampling", ctx))
        prompt = params.messages[0].content
        text = prompt.text if isinstance(prompt, types.TextContent) else "?"
        return types.CreateMessageResult(
            role="assistant",
            content=types.TextContent(type="text", text=f"{self.tag} says {text}"),
            model="test-model",
        )

    async def elicitation(
        self, ctx: mv.HandlerContext, params: types.ElicitRequestParams
    ) -> types.ElicitResult:
        self.asked.append(("elicitation", ctx))
        return types.ElicitResult(action="accept", content={"answer": f"{self.tag}-42"})

    def on_log(self, record: mv.ServerLog) -> None:
        self.logs.append(record)

    def handlers(self, **kwargs: Any) -> mv.ClientHandlers:
        return mv.ClientHandlers(
            sampling=self.sampling, elicitation=self.elicitation, logging=self.on_log, **kwargs
        )


def text_of(result: types.CallToolResult) -> str:
    assert not result.is_error, result
    block = result.content[0]
    assert isinstance(block, types.TextContent)
    return block.text


def json_of(result: types.CallToolResult) -> Any:
    if result.structured_content is not None:
        value = result.structured_content
        return value.get("result", value)
    return json.loads(text_of(result))


async def wait_for(predicate: Any, *, limit: float = 60.0) -> None:
    """Poll ``predicate`` on trio's clock; for conditions no event announces (real servers)."""
    with trio.fail_after(limit):
        while not predicate():  # noqa: ASYNC110 - a real server's state announces nothing
            await trio.sleep(0.02)
