"""The asyncio handle: every method forwards to the Trio handle through the portal.

Each method has the Trio method's name and signature and raises its errors; adding one is a
two-line forward. Calls are Trio tasks of the supervising run, so a slow or blocked host loop
never holds up supervision, and a cancelled caller cancels its request on the server.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from functools import partial
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import attrs
import trio

from mcpvisor.aio._answering import on_host, roots_on_host, server_on_host, supervisor_on_host
from mcpvisor.aio._events import ResourceUpdates, Subscription, pump, pump_updates
from mcpvisor.aio._portal import PortalClosedError, TrioPortal
from mcpvisor.specs import NAME_SEPARATOR
from mcpvisor.specs.handlers import ClientHandlers
from mcpvisor.supervisor import ServerUnavailableError, UnknownServerError
from mcpvisor.workers.catalog import EMPTY_CATALOG, Catalog
from mcpvisor.workers.operations import as_async_progress

if TYPE_CHECKING:
    from mcp_types import (
        CallToolResult,
        GetPromptResult,
        Prompt,
        ReadResourceResult,
        Resource,
        ResourceTemplate,
    )

    from mcpvisor.specs import ServerSpec, SupervisorSpec
    from mcpvisor.specs.handlers import LogLevel
    from mcpvisor.supervisor import IsolatedSession as TrioIsolatedSession
    from mcpvisor.supervisor import (
        ServerStatus,
        SupervisorStatus,
        ToolEntry,
    )
    from mcpvisor.supervisor import SupervisorClient as TrioClient
    from mcpvisor.supervisor.answering import Unroutable
    from mcpvisor.supervisor.reconfigure import ReconfigureReport
    from mcpvisor.workers.operations import Operation

T = TypeVar("T")
V = TypeVar("V")


class ProgressCallback(Protocol):
    """``await progress(progress, total, message)``: an asyncio coroutine function, run on the
    host loop for each progress notification of a call (a plain function is called there)."""

    async def __call__(self, progress: float, total: float | None, message: str | None) -> None:
        """Receive one progress notification."""


class _Core:
    """What the handle and its sessions share: the Trio handle, the portal, the snapshot."""

    def __init__(self, trio_client: TrioClient, portal: TrioPortal, clock_offset: float) -> None:
        self.trio = trio_client
        self.portal = portal
        self.clock_offset = clock_offset
        self.snapshot: SupervisorStatus = trio_client.status()
        self.catalogs: Mapping[str, Catalog] = {}
        self.refresh()

    def refresh(self) -> None:
        """In the Trio run: take a new snapshot of status and catalogs (after every event and
        command); the asyncio side reads it without locking, as one immutable value each."""
        status = self.trio.status()
        self.catalogs = {name: self.trio.catalog(name) for name in status.servers}
        self.snapshot = status

    async def call(self, server: str | None, fn: Callable[[], Awaitable[T]]) -> T:
        try:
            return await self.portal.run(fn)
        except PortalClosedError:
            raise ServerUnavailableError(
                server or "*", None, "the supervisor is shutting down"
            ) from None

    async def control(self, server: str | None, fn: Callable[[], Awaitable[T]]) -> T:
        async def act() -> T:
            try:
                return await fn()
            finally:
                self.refresh()

        return await self.call(server, act)

    def progress(self, callback: ProgressCallback | None) -> ProgressCallback | None:
        """A Trio-side progress callback that awaits ``callback`` on the host loop."""
        if callback is None:
            return None
        to_host = self.portal.to_host
        on_host = as_async_progress(callback)

        async def forward(progress: float, total: float | None, message: str | None) -> None:
            await to_host(on_host, progress, total, message)

        return forward


class SupervisorClient:
    """The asyncio twin of :class:`mcpvisor.SupervisorClient`: same methods, same errors.

    Get one from :func:`mcpvisor.aio.open_supervisor`. Requests wait for a restarting server
    within their deadline exactly as in Trio; a Trio-side timeout raises
    :class:`~mcpvisor.RequestTimeoutError`. Cancelling the asyncio caller (``task.cancel()``,
    ``asyncio.timeout``) cancels the request on the server and returns once that is done.
    The caller's context variables (OpenTelemetry context, structlog bindings) travel with
    the request. After the supervisor closed, calls raise ``ServerUnavailableError``.
    """

    def __init__(self, core: _Core, closer: Callable[[], Awaitable[None]]) -> None:
        self._core = core
        self._closer = closer

    # ---- requests -----------------------------------------------------------------------

    async def call_tool(
        self,
        server_or_qualified: str,
        tool_or_arguments: str | Mapping[str, Any] | None = None,
        arguments: Mapping[str, Any] | None = None,
        *,
        timeout: float | None = None,
        progress: ProgressCallback | None = None,
        meta: Mapping[str, Any] | None = None,
        handlers: ClientHandlers | None = None,
        unroutable: Unroutable = "isolate",
    ) -> CallToolResult:
        """Call a tool: ``call_tool("files", "read", {...})`` or ``call_tool("files__read", {})``.

        Returns the SDK's ``CallToolResult`` (``is_error`` is a result, not an exception).
        ``progress`` is an asyncio coroutine function, awaited on the host loop (a plain
        function is called there); ``meta`` is sent as the request's ``_meta``. ``handlers``
        answer the server's questions asked during this call, as in the Trio handle
        (``unroutable`` likewise); their callables are asyncio coroutine functions, awaited on
        the host loop.
        """
        core = self._core
        return await core.call(
            server_or_qualified.partition(NAME_SEPARATOR)[0],
            partial(
                core.trio.call_tool,
                server_or_qualified,
                tool_or_arguments,
                arguments,
                timeout=timeout,
                progress=core.progress(progress),
                meta=meta,
                handlers=on_host(handlers, core.portal),
                unroutable=unroutable,
            ),
        )

    async def read_resource(
        self,
        server: str,
        uri: str,
        *,
        timeout: float | None = None,
        handlers: ClientHandlers | None = None,
        unroutable: Unroutable = "isolate",
    ) -> ReadResourceResult:
        """Read one resource from ``server``; ``handlers`` and ``unroutable`` as for
        :meth:`call_tool`."""
        core = self._core
        return await core.call(
            server,
            partial(
                core.trio.read_resource,
                server,
                uri,
                timeout=timeout,
                handlers=on_host(handlers, core.portal),
                unroutable=unroutable,
            ),
        )

    async def get_prompt(
        self,
        server: str,
        name: str,
        arguments: Mapping[str, str] | None = None,
        *,
        timeout: float | None = None,
        handlers: ClientHandlers | None = None,
        unroutable: Unroutable = "isolate",
    ) -> GetPromptResult:
        """Render prompt ``name`` of ``server`` with ``arguments``; ``handlers`` and
        ``unroutable`` as for :meth:`call_tool`."""
        core = self._core
        return await core.call(
            server,
            partial(
                core.trio.get_prompt,
                server,
                name,
                arguments,
                timeout=timeout,
                handlers=on_host(handlers, core.portal),
                unroutable=unroutable,
            ),
        )

    async def request(
        self,
        server: str,
        op: str | Operation,
        args: Mapping[str, Any] | None = None,
        *,
        timeout: float | None = None,
    ) -> Any:
        """Send any operation by name and fields, or as an ``Operation`` value (see the Trio
        handle): ``request("files", "complete", {"ref": ..., "argument": ...})``."""
        trio_client = self._core.trio
        return await self._core.call(
            server, partial(trio_client.request, server, op, args, timeout=timeout)
        )

    # ---- what servers are told ------------------------------------------------------------

    async def subscribe_resource(self, server: str, uri: str) -> None:
        """Subscribe to changes of ``uri`` on ``server``, now and after every restart; updates
        arrive on :meth:`resource_updates`. Returns once the live session has it in effect, as
        :meth:`mcpvisor.SupervisorClient.subscribe_resource` does."""
        await self._core.call(server, partial(self._core.trio.subscribe_resource, server, uri))

    async def unsubscribe_resource(self, server: str, uri: str) -> None:
        """Stop the subscription to ``uri`` on ``server`` (no error if there was none), and
        return once the live session has dropped it."""
        await self._core.call(server, partial(self._core.trio.unsubscribe_resource, server, uri))

    async def set_roots(self, roots: Any, *, server: str | None = None) -> None:
        """Replace the roots every server (or only ``server``) is given, and tell live
        sessions; a roots handler is an asyncio coroutine function, awaited on the host loop."""
        core = self._core
        roots = roots_on_host(roots, core.portal)
        await core.call(server, partial(core.trio.set_roots, roots, server=server))

    async def set_logging_level(self, server: str, level: LogLevel) -> None:
        """Ask ``server`` for log records at ``level`` and above, now and after restarts."""
        await self._core.call(server, partial(self._core.trio.set_logging_level, server, level))

    def resource_updates(
        self, *, buffer: int = 1024
    ) -> AbstractAsyncContextManager[ResourceUpdates]:
        """Receive every :class:`~mcpvisor.ResourceUpdated` of subscribed resources while the
        block runs; at most ``buffer`` unread updates are held, past that the oldest dropped."""
        return self._updates(buffer)

    @asynccontextmanager
    async def _updates(self, buffer: int) -> AsyncIterator[ResourceUpdates]:
        feed = Subscription(buffer, asyncio.get_running_loop(), markers=False)
        source = partial(self._core.trio.resource_updates, buffer=buffer)
        async with self._pumped(feed, source, pump_updates, ResourceUpdates(feed)) as updates:
            yield updates

    @asynccontextmanager
    async def _pumped(
        self,
        feed: Subscription,
        source: Callable[[], AbstractAsyncContextManager[Any]],
        pump_into: Callable[[Any, Subscription], Awaitable[None]],
        view: V,
    ) -> AsyncIterator[V]:
        """``view`` of ``feed`` while a Trio task pumps what ``source()`` yields into it."""
        core = self._core

        @asynccontextmanager
        async def held() -> AsyncIterator[V]:
            async with source() as items, trio.open_nursery() as nursery:
                nursery.start_soon(pump_into, items, feed)
                yield view
                nursery.cancel_scope.cancel()

        try:
            async with core.portal.hold(held) as out:
                yield out
        except PortalClosedError:
            raise ServerUnavailableError("*", None, "the supervisor is shutting down") from None
        finally:
            feed._close()

    # ---- aggregation ----------------------------------------------------------------------

    async def list_tools(self, *, include_unavailable: bool = False) -> list[ToolEntry]:
        """Every tool of every serving server, from caches: see the Trio handle."""
        trio_client = self._core.trio
        return await self._core.call(
            None, partial(trio_client.list_tools, include_unavailable=include_unavailable)
        )

    async def list_resources(self) -> list[tuple[str, Resource]]:
        """``(server, Resource)`` pairs over ACTIVE servers, from their catalogs."""
        return await self._core.call(None, self._core.trio.list_resources)

    async def list_resource_templates(self) -> list[tuple[str, ResourceTemplate]]:
        """``(server, ResourceTemplate)`` pairs over ACTIVE servers, from their catalogs."""
        return await self._core.call(None, self._core.trio.list_resource_templates)

    async def list_prompts(self) -> list[tuple[str, Prompt]]:
        """``(server, Prompt)`` pairs over ACTIVE servers, from their catalogs."""
        return await self._core.call(None, self._core.trio.list_prompts)

    def catalog(self, server: str) -> Catalog:
        """``server``'s current catalog (tools, resources, templates, prompts, instructions),
        from the snapshot: a plain read, like :meth:`status`.

        Raises :class:`~mcpvisor.UnknownServerError` for a name that is not supervised.
        """
        catalog = self._core.catalogs.get(server)
        if catalog is None:
            raise UnknownServerError(server, [n for n in self._core.catalogs if "~" not in n])
        return catalog

    # ---- observation ----------------------------------------------------------------------

    def status(self) -> SupervisorStatus:
        """The latest status snapshot, taken by the Trio run at every event and command.

        A plain read that never blocks the loop and is safe from any thread; ``at`` is the
        trio clock now, so ``in_state_for`` stays current.
        """
        snapshot = self._core.snapshot
        return attrs.evolve(snapshot, at=max(trio_now(self._core.clock_offset), snapshot.at))

    def subscribe(self, *, buffer: int = 1024) -> AbstractAsyncContextManager[Subscription]:
        """Receive every lifecycle event from now on while the block runs.

        ``async with client.subscribe() as events: async for event in events: ...``. At most
        ``buffer`` unread events are held; past that the oldest are discarded and an
        :class:`~mcpvisor.EventsLost` marker is delivered. Supervision never waits for it.
        """
        return self._subscribe(buffer)

    @asynccontextmanager
    async def _subscribe(self, buffer: int) -> AsyncIterator[Subscription]:
        subscription = Subscription(buffer, asyncio.get_running_loop())
        source = partial(self._core.trio.subscribe, buffer=buffer)
        async with self._pumped(subscription, source, pump, subscription) as events:
            yield events

    async def aclose(self) -> None:
        """Shut the supervisor down now, as leaving ``open_supervisor``'s block does."""
        await self._closer()

    # ---- control ----------------------------------------------------------------------------

    async def restart(self, name: str) -> None:
        """Restart ``name`` now, skipping backoff; not counted against its restart budget."""
        await self._core.control(name, partial(self._core.trio.restart, name))

    async def stop(self, name: str) -> None:
        """Stop ``name`` on purpose (STOPPED); its requests fail until it is revived."""
        await self._core.control(name, partial(self._core.trio.stop, name))

    async def drop(self, name: str) -> None:
        """Give up on ``name`` (DROPPED) as if its budget were spent; ``revive`` undoes it."""
        await self._core.control(name, partial(self._core.trio.drop, name))

    async def revive(self, name: str) -> None:
        """Start a DROPPED or STOPPED server again with a fresh restart budget."""
        await self._core.control(name, partial(self._core.trio.revive, name))

    async def drop_failed_servers(self) -> list[str]:
        """Drop every server that is FAILED right now; returns their names."""
        return await self._core.control(None, self._core.trio.drop_failed_servers)

    async def add_server(self, spec: ServerSpec) -> ServerStatus:
        """Supervise a new server; returns its status once its first start attempt finished.
        Its handlers' callables are asyncio coroutine functions, awaited on the host loop."""
        core = self._core
        return await core.control(
            spec.name, partial(core.trio.add_server, server_on_host(spec, core.portal))
        )

    async def reconfigure(self, spec: SupervisorSpec) -> ReconfigureReport:
        """Make the running supervisor match ``spec``; see the Trio handle. Its handlers'
        callables are awaited on the host loop."""
        core = self._core
        return await core.control(
            None, partial(core.trio.reconfigure, supervisor_on_host(spec, core.portal))
        )

    async def reload(self, load: Callable[[], SupervisorSpec]) -> ReconfigureReport:
        """:meth:`reconfigure` to ``load()``, called in the Trio run; see the Trio handle."""
        core = self._core

        def loaded() -> SupervisorSpec:
            return supervisor_on_host(load(), core.portal)

        return await core.control(None, partial(core.trio.reload, loaded))

    async def remove_server(self, name: str) -> None:
        """Stop ``name`` and forget it; requests waiting for it get ServerUnavailableError."""
        await self._core.control(name, partial(self._core.trio.remove_server, name))

    def isolated(
        self, name: str, *, handlers: ClientHandlers | None = None
    ) -> AbstractAsyncContextManager[IsolatedSession]:
        """A dedicated, fresh session to ``name`` for the block, torn down on exit.

        See :meth:`mcpvisor.SupervisorClient.isolated`; the session lives in the Trio run, and
        ``handlers`` are awaited on the host loop.
        """
        return self._isolated(name, handlers)

    @asynccontextmanager
    async def _isolated(
        self, name: str, handlers: ClientHandlers | None
    ) -> AsyncIterator[IsolatedSession]:
        core = self._core
        try:
            enter = partial(core.trio.isolated, name, handlers=on_host(handlers, core.portal))
            async with core.portal.hold(enter) as session:
                yield IsolatedSession(core, session)
        except PortalClosedError:
            raise ServerUnavailableError(name, None, "the supervisor is shutting down") from None


class IsolatedSession:
    """Requests bound to one isolated session: the asyncio twin of the Trio session."""

    def __init__(self, core: _Core, session: TrioIsolatedSession) -> None:
        self._core = core
        self._session = session
        self.label = session.label
        """The session's name in status and events: ``server~N``."""
        self.server = session.server
        """The configured server this session is a fresh copy of."""

    async def call_tool(
        self,
        tool: str,
        arguments: Mapping[str, Any] | None = None,
        *,
        timeout: float | None = None,
        progress: ProgressCallback | None = None,
        meta: Mapping[str, Any] | None = None,
    ) -> CallToolResult:
        """Call ``tool`` on this session's server."""
        core = self._core
        return await core.call(
            self.label,
            partial(
                self._session.call_tool,
                tool,
                arguments,
                timeout=timeout,
                progress=core.progress(progress),
                meta=meta,
            ),
        )

    def catalog(self) -> Catalog:
        """This session's catalog, as of its start or its last list_changed."""
        return self._core.catalogs.get(self.label, EMPTY_CATALOG)

    async def list_tools(self) -> list[ToolEntry]:
        """This session's tools, as of its start or its last list_changed."""
        return await self._core.call(self.label, self._session.list_tools)

    async def read_resource(self, uri: str, *, timeout: float | None = None) -> ReadResourceResult:
        """Read one resource."""
        return await self._core.call(
            self.label, partial(self._session.read_resource, uri, timeout=timeout)
        )

    async def get_prompt(
        self, name: str, arguments: Mapping[str, str] | None = None, *, timeout: float | None = None
    ) -> GetPromptResult:
        """Render one prompt."""
        return await self._core.call(
            self.label, partial(self._session.get_prompt, name, arguments, timeout=timeout)
        )

    async def list_resources(self) -> list[Resource]:
        """This session's resources, from its catalog."""
        return await self._core.call(self.label, self._session.list_resources)

    async def list_resource_templates(self) -> list[ResourceTemplate]:
        """This session's resource templates, from its catalog."""
        return await self._core.call(self.label, self._session.list_resource_templates)

    async def list_prompts(self) -> list[Prompt]:
        """This session's prompts, from its catalog."""
        return await self._core.call(self.label, self._session.list_prompts)

    async def request(
        self,
        op: str | Operation,
        args: Mapping[str, Any] | None = None,
        *,
        timeout: float | None = None,
    ) -> Any:
        """Send any operation to this session (see :meth:`SupervisorClient.request`)."""
        return await self._core.call(
            self.label, partial(self._session.request, op, args, timeout=timeout)
        )


def trio_now(offset: float) -> float:
    """The Trio run's clock read from any thread (its system clock is ``perf_counter``)."""
    return time.perf_counter() + offset
