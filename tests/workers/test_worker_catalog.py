"""The worker's catalog: complete at ready, refetched on every list_changed, bounded listings."""

from __future__ import annotations

import contextvars
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs
import mcp_types as types
import pytest
import structlog
import trio
from mcp.server import Server
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.subscriptions import InMemorySubscriptionBus, ToolsListChanged
from worker_helpers import FAST, running

from mcpvisor.specs import InProcessSpec, StdioSpec
from mcpvisor.workers import Catalog, CatalogPart, WorkerHooks
from mcpvisor.workers.listing import MAX_LIST_ITEMS
from mcpvisor.workers.refresh import served_bus

BAD = Path(__file__).parent.parent / "servers" / "bad_server.py"


def bad_spec(*flags: str) -> StdioSpec:
    return StdioSpec(name="bad", command=sys.executable, args=(str(BAD), *flags), timeouts=FAST)


class Seen:
    """Collects every on_catalog call for tools; ``wait(n)`` until there have been ``n``."""

    def __init__(self) -> None:
        self.calls: list[tuple[Catalog, frozenset[CatalogPart]]] = []
        self._changed = trio.Event()

    def __call__(self, catalog: Catalog, parts: frozenset[CatalogPart]) -> None:
        # Only tool refetches: a modern session also refetches its other parts once.
        if "tools" in parts:
            self.calls.append((catalog, parts))
            self._changed.set()

    async def wait(self, count: int) -> None:
        await self.until(lambda: len(self.calls) >= count)

    async def until(self, condition: Callable[[], bool]) -> None:
        with trio.fail_after(30):
            while not condition():
                await self._changed.wait()
                self._changed = trio.Event()


async def test_a_listing_past_100_pages_is_complete() -> None:
    async with running(bad_spec("--pages", "150")) as worker:
        assert worker.ready is not None
        names = {tool.name for tool in worker.ready.catalog.tools}
    assert {f"paged{page}" for page in range(1, 151)} <= names
    assert "echo" in names


async def test_a_cursor_that_repeats_cuts_the_listing_with_a_warning() -> None:
    with structlog.testing.capture_logs() as logs:
        async with running(bad_spec("--endless-cursor")) as worker:
            assert worker.ready is not None
            assert "echo" in {tool.name for tool in worker.ready.catalog.tools}
    cuts = [entry for entry in logs if entry["event"] == "server.list_cut"]
    assert cuts and cuts[0]["bound"] == "the server repeated a cursor"
    assert cuts[0]["kept"] < MAX_LIST_ITEMS


async def test_every_handshake_era_refetch_reaches_the_hook_even_unchanged() -> None:
    seen = Seen()
    async with running(bad_spec(), hooks=WorkerHooks(on_catalog=seen)) as worker:
        assert worker.ready is not None
        first = worker.ready.catalog
        await worker.call("call_tool", name="touch_tools")
        await seen.wait(1)
        await worker.call("call_tool", name="change_tools")
        await seen.wait(2)
    (unchanged, parts), (changed, _) = seen.calls[:2]
    assert parts == {"tools"}
    assert unchanged == first
    assert len(changed.tools) == len(first.tools) + 1
    assert changed.server_info == first.server_info


def modern_server() -> MCPServer:
    server = MCPServer("modern")

    @server.tool()
    async def touch(ctx: Context) -> str:
        await ctx.notify_tools_changed()
        return "touched"

    @server.tool()
    async def grow(ctx: Context) -> str:
        server.add_tool(lambda: "new", name="new_tool")
        await ctx.notify_tools_changed()
        return "grown"

    return server


CHANGING = Path(__file__).parent.parent / "servers" / "changing_server.py"


def modern_spec(transport: str) -> InProcessSpec | StdioSpec:
    """The same server in process (its changes come off its own bus) or over stdio (on a
    ``subscriptions/listen`` stream)."""
    if transport == "inprocess":
        return InProcessSpec(name="modern", server=modern_server(), timeouts=FAST)
    return StdioSpec(name="modern", command=sys.executable, args=(str(CHANGING),), timeouts=FAST)


@pytest.mark.parametrize("transport", ["inprocess", "stdio"])
async def test_every_modern_era_refetch_reaches_the_hook_even_unchanged(transport: str) -> None:
    seen = Seen()
    spec = modern_spec(transport)
    async with running(spec, hooks=WorkerHooks(on_catalog=seen)) as worker:
        assert worker.ready is not None and worker.ready.modern
        # A change announced before the subscription is acknowledged is caught by the check
        # the subscription makes, which reports only a difference: touch until one is heard.
        with trio.fail_after(30):
            while not seen.calls:
                await worker.call("call_tool", name="touch")
                with trio.move_on_after(0.5):
                    await seen.wait(1)
        assert seen.calls[0][0].tools == worker.ready.catalog.tools
        heard = len(seen.calls)
        await worker.call("call_tool", name="touch")
        await seen.wait(heard + 1)
        assert seen.calls[heard][0].tools == worker.ready.catalog.tools
        await worker.call("call_tool", name="grow")
        await seen.until(lambda: "new_tool" in {tool.name for tool in seen.calls[-1][0].tools})
    assert {parts for _, parts in seen.calls} == {frozenset({"tools"})}


@pytest.mark.parametrize("transport", ["inprocess", "stdio"])
async def test_the_subscriptions_own_check_reports_nothing_unchanged(transport: str) -> None:
    calls: list[frozenset[CatalogPart]] = []
    heard = trio.Event()

    def on_catalog(catalog: Catalog, parts: frozenset[CatalogPart]) -> None:
        calls.append(parts)
        heard.set()

    spec = modern_spec(transport)
    async with running(spec, hooks=WorkerHooks(on_catalog=on_catalog)) as worker:
        # touch's refetch comes after the subscription's own check, in the one refresher.
        with trio.fail_after(30):
            while not heard.is_set():
                await worker.call("call_tool", name="touch")
                with trio.move_on_after(0.5):
                    await heard.wait()
    # Only announced refetches were reported: none for resources or prompts, which the
    # subscription also checked.
    assert set(calls) == {frozenset({"tools"})}


class Methods:
    """Server middleware that records the method of every request the server is sent."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    async def __call__(self, ctx: Any, call_next: Any) -> Any:
        self.seen.append(ctx.method)
        return await call_next(ctx)


async def test_an_in_process_server_is_followed_on_its_own_bus_not_a_listen_stream() -> None:
    server = modern_server()
    methods = Methods()
    server.middleware.insert(0, methods)
    seen = Seen()
    spec = InProcessSpec(name="modern", server=server, timeouts=FAST)
    async with running(spec, hooks=WorkerHooks(on_catalog=seen)) as worker:
        assert worker.ready is not None and worker.ready.modern
        await worker.call("call_tool", name="grow")
        await seen.until(lambda: "new_tool" in {tool.name for tool in seen.calls[-1][0].tools})
    # Subscribed before the first listing: nothing to catch up on, so one refetch, announced.
    assert len(seen.calls) == 1
    assert "subscriptions/listen" not in methods.seen
    assert methods.seen.count("tools/list") == 2


def test_the_bus_followed_is_the_one_the_servers_listen_handler_relays() -> None:
    bus = InMemorySubscriptionBus()
    assert served_bus(MCPServer("custom", subscriptions=bus)) is bus
    assert served_bus(MCPServer("default")) is not None
    # No listen handler: the server announces nothing to anyone, so nothing is followed.
    assert served_bus(MCPServer("quiet", subscriptions=False)) is None
    assert served_bus(Server("low")) is None


async def test_a_change_published_on_a_custom_bus_is_refetched() -> None:
    bus = InMemorySubscriptionBus()
    server = MCPServer("custom", subscriptions=bus)

    @server.tool()
    def add(a: int, b: int) -> int:
        return a + b

    seen = Seen()
    spec = InProcessSpec(name="custom", server=server, timeouts=FAST)
    async with running(spec, hooks=WorkerHooks(on_catalog=seen)) as worker:
        assert worker.ready is not None and worker.ready.modern
        server.add_tool(lambda: "new", name="new_tool")
        await bus.publish(ToolsListChanged())
        await seen.wait(1)
    catalog, parts = seen.calls[0]
    assert parts == {"tools"}
    assert "new_tool" in {tool.name for tool in catalog.tools}


REQUEST_ID: contextvars.ContextVar[str] = contextvars.ContextVar("REQUEST_ID", default="unset")


@pytest.mark.parametrize("protocol", ["auto", "legacy"])
async def test_each_request_is_served_in_its_callers_context(protocol: str) -> None:
    server = MCPServer("ctx")

    @server.tool()
    async def whoami() -> str:
        return REQUEST_ID.get()

    spec = InProcessSpec(name="ctx", server=server, timeouts=FAST, protocol=protocol)
    async with running(spec) as worker:
        contexts = []
        for caller in ("alice", "bob"):
            REQUEST_ID.set(caller)
            contexts.append(contextvars.copy_context())
        REQUEST_ID.set("the test's own")
        envelopes = [worker.submit("call_tool", name="whoami") for _ in contexts]
        for envelope, context in zip(envelopes, contexts, strict=True):
            envelope.context = context
        bare = worker.submit("call_tool", name="whoami")
        with trio.fail_after(30):
            answers = [(await e.reply.wait()).content[0].text for e in [*envelopes, bare]]  # type: ignore[attr-defined]
    # The worker's own context is its spawner's, never a previous caller's.
    assert answers == ["alice", "bob", "unset"]


async def test_a_callers_structlog_context_tags_the_lines_logged_for_its_call() -> None:
    seen: list[str] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        seen.append(structlog.contextvars.get_contextvars().get("caller", "none"))

    server = MCPServer("progress")

    @server.tool()
    async def count(ctx: Context) -> str:
        await ctx.report_progress(1, 1)
        return "counted"

    spec = InProcessSpec(name="progress", server=server, timeouts=FAST, protocol="legacy")
    async with running(spec) as worker:
        with structlog.contextvars.bound_contextvars(caller="alice"):
            context = contextvars.copy_context()
        envelope = worker.submit("call_tool", on_progress, name="count")
        envelope.context = context
        with trio.fail_after(30):
            await envelope.reply.wait()
    assert seen == ["alice"]


def test_a_catalog_finds_tools_by_name_and_keeps_the_first_of_a_repeated_name() -> None:
    def tool(name: str, description: str) -> types.Tool:
        return types.Tool(name=name, description=description, input_schema={"type": "object"})

    catalog = Catalog(tools=(tool("a", "first"), tool("b", "other"), tool("a", "second")))
    found = catalog.tool("a")
    assert found is not None and found.description == "first"
    assert catalog.tool("c") is None
    assert catalog == Catalog(tools=catalog.tools)
    emptied = attrs.evolve(catalog, tools=(tool("c", "new"),))
    assert emptied.tool("a") is None and emptied.tool("c") is not None
