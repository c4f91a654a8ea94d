"""The handle's ``unroutable=`` keyword, which the gateway's relay stands on.

A 2025-era stdio session cannot say which request asked. ``unroutable="isolate"`` (the
default) runs a call with ``handlers=`` in an isolated session (a new process); ``"share"``
keeps it on the shared session, whose own handlers answer.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import trio

import mcpvisor as mv
from mcpvisor.specs import UsageError
from tests.gateway.support import GATEWAY_TIMEOUT
from tests.s2c.support import Recorder, stdio_spec, text_of

ASKER = Path(__file__).with_name("asker.py")


async def test_share_keeps_an_unroutable_call_on_the_shared_session() -> None:
    host, caller = Recorder("host"), Recorder("caller")
    spec = mv.SupervisorSpec([stdio_spec(protocol="legacy", handlers=host.handlers())])
    with trio.fail_after(GATEWAY_TIMEOUT):
        async with mv.open_supervisor(spec) as client:
            pid = client.status().servers["s2c"].pid
            shared = await client.call_tool(
                "s2c", "ask_model", {"prompt": "p"}, handlers=caller.handlers(), unroutable="share"
            )
            # The session could not route, so its own handlers answered; no new process.
            assert text_of(shared) == "host says p"
            assert set(client.status().servers) == {"s2c"}
            assert client.status().servers["s2c"].pid == pid
            isolated = await client.call_tool(
                "s2c", "ask_model", {"prompt": "i"}, handlers=caller.handlers()
            )
            assert text_of(isolated) == "caller says i"
            with pytest.raises(UsageError, match="unroutable"):
                await client.call_tool(
                    "s2c",
                    "ask_model",
                    {},
                    handlers=caller.handlers(),
                    unroutable="guess",  # type: ignore[arg-type]
                )
    assert [ctx.session for _, ctx in host.asked] == ["s2c"]
    assert [ctx.session.startswith("s2c~") for _, ctx in caller.asked] == [True]


@pytest.mark.parametrize("unroutable", ["isolate", "share"])
async def test_get_prompt_and_read_resource_take_handlers(unroutable: str) -> None:
    host, caller = Recorder("host"), Recorder("caller")
    asker = mv.StdioSpec(
        name="a",
        command=sys.executable,
        args=[str(ASKER)],
        protocol="legacy",
        handlers=host.handlers(),
    )
    with trio.fail_after(GATEWAY_TIMEOUT):
        async with mv.open_supervisor(mv.SupervisorSpec([asker, stdio_spec()])) as client:
            prompt = await client.get_prompt(
                "a",
                "pitch",
                {"topic": "t"},
                handlers=caller.handlers(),
                unroutable=unroutable,  # type: ignore[arg-type]
            )
            read = await client.read_resource(
                "s2c",
                "res://counter",
                handlers=caller.handlers(),
                unroutable=unroutable,  # type: ignore[arg-type]
            )
    content = prompt.messages[0].content
    expected = "caller" if unroutable == "isolate" else "host"
    assert getattr(content, "text", None) == f"Pitch: {expected} says t"
    assert getattr(read.contents[0], "text", None) == "0"
