"""An ``MCPServer`` that asks its client for things, for the server-to-client tests.

Run as ``python s2c_server.py [--transport stdio|streamable-http] [--port N]`` (HTTP prints
``PORT <n>`` once it listens), or import ``server`` for an in-process spec. Its questions use
the SDK's ``Resolve`` markers, so they are standalone requests on 2025-era sessions and
input-required rounds on 2026-07-28 ones. Tools:

- ``ask_model(prompt)``: samples the client's model, returns its text.
- ``ask_user(question)``: elicits ``{"answer": str}``, returns ``"accept:<answer>"`` (or the
  action taken).
- ``roots()``: the client's root URIs.
- ``client_capabilities()``: what the client advertised (initialize, or the request's _meta).
- ``log(count, level)``: sends ``count`` log records ``line <i>`` at ``level``, on the
  session's own channel (over HTTP, the standalone stream).
- ``log_here(count, level)``: the same, tied to the request (over HTTP, its response stream).
- ``log_env(name)``: logs the value of environment variable ``name``, as text and nested.
- ``touch(uri)``: sends ``notifications/resources/updated`` for ``uri`` if subscribed (2025
  era), or publishes it to ``subscriptions/listen`` streams (2026-07-28).
- ``state()``: subscribed URIs, the logging level set, and roots/list_changed seen.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import mcp_types as types
from mcp.server.mcpserver import (
    Context,
    Elicit,
    ElicitationResult,
    ListRoots,
    MCPServer,
    Resolve,
    Sample,
)
from pydantic import BaseModel

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "servers"))
from mcpserver_main import main

server = MCPServer("s2c-test-server")
_state: dict[str, Any] = {"subscribed": [], "level": None, "roots_changed": 0}


class Answer(BaseModel):
    answer: str


def _elicit(question: str) -> Elicit[Answer]:
    return Elicit(question, Answer)


def _sample(prompt: str) -> Sample:
    message = types.SamplingMessage(
        role="user", content=types.TextContent(type="text", text=prompt)
    )
    return Sample([message], max_tokens=50)


def _roots() -> ListRoots:
    return ListRoots()


@server.tool()
async def ask_model(
    prompt: str, result: Annotated[types.CreateMessageResult, Resolve(_sample)]
) -> str:
    """Sample the client's model."""
    content = result.content
    return content.text if isinstance(content, types.TextContent) else repr(content)


@server.tool()
async def ask_user(
    question: str, reply: Annotated[ElicitationResult[Answer], Resolve(_elicit)]
) -> str:
    """Ask the user a question."""
    data = getattr(reply, "data", None)
    return f"{reply.action}:{data.answer}" if data is not None else reply.action


@server.tool()
async def roots(result: Annotated[types.ListRootsResult, Resolve(_roots)]) -> list[str]:
    """The client's roots."""
    return [str(root.uri) for root in result.roots]


@server.tool()
async def client_capabilities(ctx: Context) -> dict[str, Any]:
    """What the client advertised."""
    caps = ctx.client_capabilities
    return caps.model_dump(by_alias=True, exclude_none=True) if caps is not None else {}


@server.tool()
async def log(count: int, level: str, ctx: Context) -> int:
    """Send ``count`` log records."""
    for i in range(count):
        await ctx.request_context.session.send_log_message(
            level=level, data=f"line {i}", logger="s2c"
        )  # type: ignore[arg-type]
    return count


@server.tool()
async def log_here(count: int, level: str, ctx: Context) -> int:
    """Send ``count`` log records as part of this request."""
    for i in range(count):
        await ctx.log(level, f"line {i}", logger_name="s2c")  # type: ignore[arg-type]
    return count


@server.tool()
async def log_env(name: str, ctx: Context) -> bool:
    """Log the value of environment variable ``name`` (a secret, in the redaction test)."""
    import os

    session = ctx.request_context.session
    await session.send_log_message(level="error", data=f"token is {os.environ[name]}")
    await session.send_log_message(level="error", data={"nested": os.environ[name]})
    return True


@server.tool()
async def touch(uri: str, ctx: Context) -> bool:
    """Say ``uri`` changed, if the client subscribed to it."""
    if ctx.protocol_version == "2026-07-28":
        await ctx.notify_resource_updated(uri)
        return True
    if uri not in _state["subscribed"]:
        return False
    await ctx.request_context.session.send_resource_updated(uri)
    return True


@server.tool()
def state() -> dict[str, Any]:
    """What the client set up on this session."""
    return dict(_state)


@server.resource("res://counter")
def counter() -> str:
    """A resource clients may subscribe to."""
    return "0"


@server.resource("res://items/{name}")
def item(name: str) -> str:
    """A resource template, for the typed-arguments tests."""
    return f"item {name}"


@server.prompt()
def greet(language: str) -> str:
    """A prompt whose argument completes."""
    return f"Say hello in {language}."


@server.completion()
async def complete(ref: Any, argument: Any, context: Any) -> types.Completion:
    """Languages for ``greet``, names for ``res://items/{name}``, by prefix."""
    pool = (
        ["english", "esperanto", "french"] if argument.name == "language" else ["apple", "avocado"]
    )
    prefix = argument.value or ""
    return types.Completion(values=[v for v in pool if v.startswith(prefix)])


async def _subscribe(ctx: Any, params: types.SubscribeRequestParams) -> types.EmptyResult:
    _state["subscribed"].append(str(params.uri))
    return types.EmptyResult()


async def _unsubscribe(ctx: Any, params: types.UnsubscribeRequestParams) -> types.EmptyResult:
    if str(params.uri) in _state["subscribed"]:
        _state["subscribed"].remove(str(params.uri))
    return types.EmptyResult()


async def _set_level(ctx: Any, params: types.SetLevelRequestParams) -> types.EmptyResult:
    _state["level"] = params.level
    return types.EmptyResult()


async def _roots_changed(ctx: Any, params: types.NotificationParams) -> None:
    _state["roots_changed"] += 1


_low = server._lowlevel_server
_low.add_request_handler("resources/subscribe", types.SubscribeRequestParams, _subscribe)
_low.add_request_handler("resources/unsubscribe", types.UnsubscribeRequestParams, _unsubscribe)
_low.add_request_handler("logging/setLevel", types.SetLevelRequestParams, _set_level)
_low.add_notification_handler(
    "notifications/roots/list_changed", types.NotificationParams, _roots_changed
)


if __name__ == "__main__":
    main(server)
