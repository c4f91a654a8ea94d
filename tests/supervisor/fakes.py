"""In-process MCP servers that a test can crash at any moment.

The fault is raised from a nursery that the server's lifespan holds open around the session,
so it surfaces in the worker task that owns the session: to the worker it looks exactly like
a transport dying under it.
"""

from __future__ import annotations

import contextvars
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import trio
from mcp.server.mcpserver import Context, MCPServer

from mcpvisor import InProcessSpec

CALLER = contextvars.ContextVar[str]("CALLER")
"""A context variable tests set in a caller's task, to see whose context code runs in."""


class ServerCrashed(Exception):
    """What a fake server 'dies' of."""


class FakeServer:
    """An ``MCPServer`` plus the controls a test needs.

    ``sessions`` counts sessions opened (starts); ``counter`` tool state lives per session, so
    isolated sessions can show they share nothing. ``fail_starts`` makes that many next starts
    fail before the session is ready.
    """

    def __init__(self, name: str, *, fail_starts: int = 0) -> None:
        self.name = name
        self.sessions = 0
        self.live = 0
        self.fail_starts = fail_starts
        self.calls = 0
        self.cancelled = 0
        self.cancellation = trio.Event()
        self.reads = 0
        self.read_seen = trio.Event()
        self.hold_starts: trio.Event | None = None
        self.slow_teardown = 0.0
        self.start_contexts: list[str] = []
        self.teardowns_started = 0
        self.teardowns_done = 0
        self.most_live = 0
        self.release = trio.Event()
        self.on_call: Callable[[], None] = lambda: None
        self._faults: list[trio.Event] = []
        self.server = self._build()

    def spec(self, **kwargs: Any) -> InProcessSpec:
        return InProcessSpec(name=self.name, server=self.server, **kwargs)

    def crash(self) -> None:
        """Kill every live session of this server now."""
        for event in self._faults:
            event.set()

    def _build(self) -> MCPServer:
        fake = self

        @asynccontextmanager
        async def lifespan(_server: Any) -> AsyncIterator[dict[str, Any]]:
            fake.sessions += 1
            fake.start_contexts.append(CALLER.get("unset"))
            if fake.fail_starts > 0:
                fake.fail_starts -= 1
                raise ServerCrashed(f"{fake.name} refuses to start")
            if fake.hold_starts is not None:
                await fake.hold_starts.wait()
            fault = trio.Event()
            fake._faults.append(fault)
            state = {"count": 0}
            fake.live += 1
            fake.most_live = max(fake.most_live, fake.live)
            try:
                async with trio.open_nursery() as nursery:

                    async def watch() -> None:
                        await fault.wait()
                        raise ServerCrashed(f"{fake.name} crashed")

                    nursery.start_soon(watch)
                    yield state
                    nursery.cancel_scope.cancel()
            finally:
                fake.live -= 1
                fake._faults.remove(fault)
                if fake.slow_teardown:
                    # A session that takes long to close (a server flushing state, a slow
                    # network): the worker's teardown waits for it.
                    fake.teardowns_started += 1
                    with trio.CancelScope(shield=True):
                        await trio.sleep(fake.slow_teardown)
                    fake.teardowns_done += 1

        server = MCPServer(self.name, lifespan=lifespan)

        @server.tool()
        async def add(a: int, b: int) -> int:
            """Add two numbers."""
            fake.on_call()
            fake.calls += 1
            return a + b

        @server.tool()
        async def echo(text: str) -> str:
            """Echo the text back."""
            fake.calls += 1
            return text

        @server.tool()
        async def wait() -> str:
            """Block until the test releases it; counts cancellations."""
            fake.calls += 1
            try:
                await fake.release.wait()
            except BaseException:
                fake.cancelled += 1
                fake.cancellation.set()
                raise
            return "released"

        @server.tool()
        async def bump(ctx: Context) -> int:  # type: ignore[type-arg]
            """Count calls in this session: sessions share nothing."""
            state = ctx.request_context.lifespan_context
            state["count"] += 1
            return int(state["count"])

        @server.tool()
        async def whose_context() -> str:
            """The CALLER this call is served under (the worker applies the caller's context)."""
            return CALLER.get("unset")

        @server.tool()
        async def meta_of(ctx: Context) -> str:  # type: ignore[type-arg]
            """The ``trace`` key of the request's ``_meta``."""
            meta = ctx.request_context.meta or {}
            return str(meta.get("trace"))

        @server.tool()
        async def grow(ctx: Context, name: str) -> str:  # type: ignore[type-arg]
            """Add a tool called ``name`` (if new) and announce the tool list changed."""
            if name not in {tool.name for tool in server._tool_manager.list_tools()}:
                server.add_tool(lambda: name, name=name)
            await ctx.notify_tools_changed()
            return name

        @server.tool()
        async def touch(ctx: Context, what: str) -> str:  # type: ignore[type-arg]
            """Announce a ``what`` (resources or prompts) list change without changing it."""
            if what == "resources":
                await ctx.notify_resources_changed()
            else:
                await ctx.notify_prompts_changed()
            return what

        @server.resource("memo://{topic}")
        async def memo(topic: str) -> str:
            """A resource template: one memo per topic."""
            return f"memo about {topic}"

        @server.prompt()
        def review(code: str) -> str:
            """A prompt, so catalogs have one."""
            return f"Review this: {code}"

        @server.resource("memo://slow")
        async def slow() -> str:
            """A resource that answers once the test releases it."""
            fake.reads += 1
            fake.read_seen.set()
            await fake.release.wait()
            return "slow memo"

        return server
