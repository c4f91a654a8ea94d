"""An ``MCPServer`` that asks its client a question and then takes it back, for the gateway's
server-to-client cancellation tests.

Run as ``python asker.py [--transport stdio|streamable-http] [--port N]`` (HTTP prints
``PORT <n>`` once it listens). Tools:

- ``ask_then_cancel()``: sends ``sampling/createMessage`` (a 2025-era request), and cancels it
  as soon as ``release()`` is called; returns ``"taken back"`` (or the model's text, if the
  client answered first).
- ``release()``: lets ``ask_then_cancel`` cancel its question.
- ``ask_both(topic)``: samples the model and asks the user in one go (``Resolve`` markers:
  one input-required round of two questions on 2026-07-28 sessions); returns both answers.
- prompt ``pitch(topic)``: samples the model while rendering (a 2025-era request, related to
  the ``prompts/get`` that caused it).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import anyio
import mcp_types as types
from mcp.server.mcpserver import Context, Elicit, ElicitationResult, MCPServer, Resolve, Sample
from pydantic import BaseModel

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "servers"))
from mcpserver_main import main

server = MCPServer("gateway-asker")
_state: dict[str, anyio.Event] = {}


@server.tool()
async def ask_then_cancel(ctx: Context) -> str:
    """Ask the client's model, then cancel the question once ``release`` is called."""
    released = _state["released"] = anyio.Event()
    session = ctx.request_context.session
    message = types.SamplingMessage(role="user", content=types.TextContent(text="never mind"))
    answer: str = "taken back"
    async with anyio.create_task_group() as group:

        async def ask() -> None:
            nonlocal answer
            result = await session.create_message(
                [message], max_tokens=10, related_request_id=ctx.request_id
            )
            answer = getattr(result.content, "text", "?")
            group.cancel_scope.cancel()

        group.start_soon(ask)
        await released.wait()
        group.cancel_scope.cancel()
    return answer


@server.tool()
def release() -> str:
    """Let ``ask_then_cancel`` take its question back."""
    if "released" in _state:
        _state["released"].set()
    return "released"


class Answer(BaseModel):
    answer: str


def _sample(topic: str) -> Sample:
    message = types.SamplingMessage(role="user", content=types.TextContent(text=topic))
    return Sample([message], max_tokens=10)


def _elicit(topic: str) -> Elicit[Answer]:
    return Elicit(f"what about {topic}?", Answer)


@server.tool()
async def ask_both(
    topic: str,
    sampled: Annotated[types.CreateMessageResult, Resolve(_sample)],
    reply: Annotated[ElicitationResult[Answer], Resolve(_elicit)],
) -> str:
    """Ask the model and the user about ``topic`` at once."""
    data = getattr(reply, "data", None)
    return f"{getattr(sampled.content, 'text', '?')} / {data.answer if data else reply.action}"


@server.prompt()
async def pitch(topic: str, ctx: Context) -> str:
    """A pitch for ``topic``, written by the client's model."""
    message = types.SamplingMessage(role="user", content=types.TextContent(text=topic))
    result = await ctx.request_context.session.create_message(
        [message], max_tokens=10, related_request_id=ctx.request_id
    )
    return f"Pitch: {getattr(result.content, 'text', '?')}"


if __name__ == "__main__":
    main(server)
