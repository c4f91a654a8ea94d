"""The worker against in-process ``MCPServer`` objects: requests, cancellation, timeouts, lists."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any

import attrs
import mcp_types as types
import pytest
import trio
from mcp.server.mcpserver import Context, MCPServer
from mcp.shared.exceptions import MCPError
from worker_helpers import FAST, running

from mcpvisor.specs import InProcessSpec, Timeouts
from mcpvisor.workers import (
    Catalog,
    CatalogPart,
    RequestInterruptedError,
    RequestTimeoutError,
    WorkerHooks,
)
from mcpvisor.workers.operations import Operation
from mcpvisor.workers.requests import Envelope


class Probe:
    """An in-process server whose ``wait_forever`` tool records how it ended."""

    def __init__(self) -> None:
        self.server = MCPServer("inproc")
        self.started = trio.Event()
        self.cancelled = trio.Event()
        server = self.server

        @server.tool()
        def add(a: int, b: int) -> int:
            return a + b

        @server.tool()
        async def wait_forever() -> str:
            self.started.set()
            try:
                await trio.sleep_forever()
            finally:
                self.cancelled.set()

        @server.tool()
        async def count(ctx: Context, steps: int) -> str:
            for step in range(steps):
                await ctx.report_progress(step, steps)
            return "counted"

        @server.tool()
        async def grow(ctx: Context) -> str:
            server.add_tool(lambda: "new", name="new_tool")
            await ctx.notify_tools_changed()
            return "grown"

        @server.resource("memo://greeting")
        def greeting() -> str:
            return "hello"

        @server.prompt()
        def review(code: str) -> str:
            return f"Review this: {code}"

    def spec(
        self, timeouts: Timeouts = FAST, protocol: str = "auto", max_concurrency: int = 32
    ) -> InProcessSpec:
        return InProcessSpec(
            name="inproc",
            server=self.server,
            timeouts=timeouts,
            protocol=protocol,
            max_concurrency=max_concurrency,
        )


def text_of(result: Any) -> str:
    assert isinstance(result, types.CallToolResult)
    content = result.content[0]
    assert isinstance(content, types.TextContent)
    return content.text


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_operations_work(mode: str) -> None:
    probe = Probe()
    async with running(probe.spec(protocol=mode)) as worker:
        ready = worker.ready
        assert ready is not None
        assert [p.name for p in ready.catalog.prompts] == ["review"]
        assert [str(r.uri) for r in ready.catalog.resources] == ["memo://greeting"]
        added = await worker.call("call_tool", name="add", arguments={"a": 4, "b": 5})
        assert text_of(added) == "9"
        resource = await worker.call("read_resource", uri="memo://greeting")
        assert isinstance(resource, types.ReadResourceResult)
        prompt = await worker.call("get_prompt", name="review", arguments={"code": "x = 1"})
        assert isinstance(prompt, types.GetPromptResult)
        assert isinstance(await worker.call("list_prompts"), types.ListPromptsResult)
        assert isinstance(await worker.call("list_resources"), types.ListResourcesResult)
        assert await worker.call("probe") is None
        with pytest.raises(MCPError):
            await worker.call("read_resource", uri="memo://missing")


async def test_progress_is_forwarded() -> None:
    probe = Probe()
    seen: list[tuple[float, float | None]] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        seen.append((progress, total))

    async with running(probe.spec()) as worker:
        envelope = worker.submit("call_tool", on_progress, name="count", arguments={"steps": 3})
        assert text_of(await envelope.reply.wait()) == "counted"
    assert seen == [(0, 3), (1, 3), (2, 3)]


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_a_cancelled_caller_cancels_the_server_side(mode: str) -> None:
    probe = Probe()
    async with running(probe.spec(protocol=mode)) as worker:
        envelope = worker.submit("call_tool", name="wait_forever")
        await probe.started.wait()
        envelope.cancel()
        with pytest.raises(RequestInterruptedError):
            await envelope.reply.wait()
        await probe.cancelled.wait()
        # The session survives a cancelled request.
        added = await worker.call("call_tool", name="add", arguments={"a": 1, "b": 1})
        assert text_of(added) == "2"


async def test_a_request_timeout_cancels_the_call(autojump_clock: trio.testing.MockClock) -> None:
    probe = Probe()
    timeouts = Timeouts(request=5, probe_interval=None)
    async with running(probe.spec(timeouts)) as worker:
        start = trio.current_time()
        with pytest.raises(RequestTimeoutError) as caught:
            await worker.call("call_tool", name="wait_forever")
        assert trio.current_time() - start == pytest.approx(5)
        assert caught.value.timeout == pytest.approx(5)
        await probe.cancelled.wait()


async def test_a_sender_that_keeps_the_deadline_replaces_the_servers_bound(
    autojump_clock: trio.testing.MockClock,
) -> None:
    probe = Probe()
    async with running(probe.spec(Timeouts(request=1, probe_interval=None))) as worker:
        envelope = worker.submit("call_tool", name="wait_forever")
        start = trio.current_time()
        envelope.deadline = start + 2
        # The worker does not cut the call at its own 1 s: the sender keeps the deadline.
        with trio.move_on_at(envelope.deadline):
            await envelope.reply.wait()
        assert not envelope.reply.done
        envelope.cancel()
        with pytest.raises(RequestTimeoutError) as caught:
            await envelope.reply.wait()
        assert caught.value.timeout == pytest.approx(2)
        await probe.cancelled.wait()


@attrs.frozen
class _CancelledAsItEnds(Operation):
    """Calls its own envelope off and returns with no checkpoint left, as a call whose answer
    was already read when its caller gave up."""

    name = "call_tool"
    method = "tools/call"
    envelope: list[Envelope] = attrs.Factory(list)

    def perform(self, client: Any, ready: Any) -> Awaitable[object]:
        return self._run()

    async def _run(self) -> object:
        self.envelope[0].cancel()
        return "answered"


async def test_a_call_cancelled_as_it_ends_leaves_the_next_call_alone() -> None:
    probe = Probe()
    async with running(probe.spec(max_concurrency=1)) as worker:
        operation = _CancelledAsItEnds()
        envelope = Envelope(operation)
        operation.envelope.append(envelope)
        worker.send.send_nowait(envelope)
        # Queued behind it, for the same serving task (max_concurrency=1), which must take a
        # new cancel scope for it.
        nxt = worker.submit("call_tool", name="add", arguments={"a": 2, "b": 3})
        assert await envelope.reply.wait() == "answered"
        with trio.fail_after(60):
            assert text_of(await nxt.reply.wait()) == "5"


async def test_listen_refetches_tools_in_the_modern_era() -> None:
    probe = Probe()
    changed = trio.Event()
    latest: list[tuple[types.Tool, ...]] = []

    def on_catalog(catalog: Catalog, parts: frozenset[CatalogPart]) -> None:
        assert "tools" in parts
        latest.append(catalog.tools)
        if "new_tool" in {tool.name for tool in catalog.tools}:
            changed.set()

    hooks = WorkerHooks(on_catalog=on_catalog)
    async with running(probe.spec(), hooks=hooks) as worker:
        assert worker.ready is not None and worker.ready.modern
        await worker.call("call_tool", name="grow")
        await changed.wait()
    assert "new_tool" in {tool.name for tool in latest[-1]}
