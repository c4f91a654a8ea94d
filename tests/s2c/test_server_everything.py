"""Acceptance against the real npm ``@modelcontextprotocol/server-everything``.

It registers ``trigger-sampling-request``, ``trigger-elicitation-request`` and ``get-roots-list``
only for clients that advertise sampling, elicitation and roots, so these tests see both that
the capabilities follow the handlers and that the handlers answer. It also logs through
``notifications/message`` and supports ``resources/subscribe``.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import mcp_types as types
import pytest
import trio

import mcpvisor as mv
from tests.s2c.npm import EVERYTHING, LOOPBACK, node, npm_package
from tests.s2c.support import QUICK, Recorder, text_of, wait_for
from tests.supervisor.support import until

CONDITIONAL = {"trigger-sampling-request", "trigger-elicitation-request", "get-roots-list"}
TIMEOUTS = mv.Timeouts(connect=60, initialize=60, request=60)


@pytest.fixture(scope="module")
def everything() -> str:
    return str(npm_package(*EVERYTHING))


def stdio(entry: str, **kwargs: Any) -> mv.StdioSpec:
    return mv.StdioSpec(
        name="everything",
        command=node(),
        args=[entry, "stdio"],
        restart=QUICK,
        timeouts=TIMEOUTS,
        **kwargs,
    )


async def elicit(ctx: mv.HandlerContext, params: types.ElicitRequestParams) -> types.ElicitResult:
    assert isinstance(params, types.ElicitRequestFormParams)
    assert "name" in params.requested_schema["properties"]
    return types.ElicitResult(action="accept", content={"name": "Ada Lovelace", "check": True})


async def _offered(client: mv.SupervisorClient) -> set[str]:
    return {entry.name for entry in await client.list_tools()}


async def _exercise(client: mv.SupervisorClient, host: Recorder) -> None:
    assert await _offered(client) >= CONDITIONAL
    sampled = await client.call_tool(
        "everything", "trigger-sampling-request", {"prompt": "ping", "maxTokens": 10}
    )
    assert "host says Resource trigger-sampling-request context: ping" in text_of(sampled)
    elicited = await client.call_tool("everything", "trigger-elicitation-request", {})
    texts = " ".join(b.text for b in elicited.content if isinstance(b, types.TextContent))
    assert "User provided the requested information" in texts and "Ada Lovelace" in texts
    roots = await client.call_tool("everything", "get-roots-list", {})
    assert "file:///data" in text_of(roots)
    kinds = [kind for kind, _ in host.asked]
    assert kinds == ["sampling"]
    assert all(ctx.server == "everything" for _, ctx in host.asked)


async def test_without_handlers_the_conditional_tools_are_hidden(everything: str) -> None:
    async with mv.open_supervisor(mv.SupervisorSpec([stdio(everything)])) as client:
        assert not (await _offered(client) & CONDITIONAL)
        assert "echo" in await _offered(client)


async def test_stdio_sampling_elicitation_roots_and_logs(
    everything: str, caplog: pytest.LogCaptureFixture
) -> None:
    host = Recorder()
    handlers = mv.ClientHandlers(
        sampling=host.sampling, elicitation=elicit, roots=["file:///data"], logging=host.on_log
    )
    spec = mv.SupervisorSpec([stdio(everything, protocol="legacy")], handlers=handlers)
    with caplog.at_level(logging.INFO, logger="mcpvisor"):
        async with mv.open_supervisor(spec) as client:
            await _exercise(client, host)
            # The server logs the roots it received; the record reaches the host's callback.
            await wait_for(lambda: any("root(s) received" in str(r.data) for r in host.logs))
    record = next(r for r in host.logs if "root(s) received" in str(r.data))
    assert (record.server, record.level) == ("everything", "info")
    lines = [r.getMessage() for r in caplog.records if "server.log" in r.getMessage()]
    assert any("root(s) received" in line and "server='everything'" in line for line in lines)


@asynccontextmanager
async def http_everything(entry: str) -> AsyncIterator[str]:
    process = await trio.lowlevel.open_process(
        [node(), "--require", str(LOOPBACK), entry, "streamableHttp"],
        env={**os.environ, "PORT": "0"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        assert process.stderr is not None
        buffer = b""
        with trio.fail_after(60):
            while b"PORT " not in buffer or not buffer.split(b"PORT ", 1)[1].count(b"\n"):
                chunk = await process.stderr.receive_some()
                assert chunk, "server-everything exited before listening"
                buffer += chunk
        port = int(buffer.split(b"PORT ", 1)[1].split(b"\n", 1)[0])
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        with trio.CancelScope(shield=True):
            process.kill()
            await process.wait()
            if process.stderr is not None:
                await process.stderr.aclose()


async def test_streamable_http_sampling_elicitation_and_roots(everything: str) -> None:
    host = Recorder()
    handlers = mv.ClientHandlers(sampling=host.sampling, elicitation=elicit, roots=["file:///data"])
    async with http_everything(everything) as url:
        spec = mv.HttpSpec(name="everything", url=url, protocol="legacy", timeouts=TIMEOUTS)
        async with mv.open_supervisor(mv.SupervisorSpec([spec], handlers=handlers)) as client:
            await _exercise(client, host)
            # A routed call on the shared HTTP session reaches the caller's handler.
            caller = Recorder("caller")
            routed = await client.call_tool(
                "everything",
                "trigger-sampling-request",
                {"prompt": "mine"},
                handlers=mv.ClientHandlers(sampling=caller.sampling),
            )
            assert "caller says" in text_of(routed)
            assert [ctx.session for _, ctx in caller.asked] == ["everything"]


async def test_a_subscription_survives_sigkill_and_restart(everything: str) -> None:
    uri = "demo://resource/dynamic/text/1"
    spec = mv.SupervisorSpec([stdio(everything, protocol="legacy")])
    async with mv.open_supervisor(spec) as client, client.resource_updates() as updates:
        await client.subscribe_resource("everything", uri)

        async def next_update() -> mv.ResourceUpdated:
            # The server sends one at once, then one every 5 s, while its updates are on.
            await client.call_tool("everything", "toggle-subscriber-updates", {})
            with trio.fail_after(30):
                async for update in updates:
                    return update
            raise AssertionError("the feed ended")

        first = await next_update()
        assert (first.server, first.uri) == ("everything", uri)
        pid = client.status().servers["everything"].pid
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        await until(
            client,
            lambda s: (
                s.servers["everything"].state is mv.ServerState.ACTIVE
                and s.servers["everything"].pid not in (None, pid)
            ),
        )
        # A fresh server knows no subscriptions: updates now prove mcpvisor re-subscribed.
        while updates.queue:
            updates.queue.popleft()
        again = await next_update()
        assert again.uri == uri
