"""The handle a host uses: requests, catalogs, events, status and control, over one seam.

:class:`SupervisorClient` holds a :class:`~mcpvisor.supervisor.interface.RuntimeInterface`
and nothing else: it turns friendly calls into operations, reads listings from the published
catalogs, and never touches the runtime's internals.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import TYPE_CHECKING, Any

import attrs
import trio

from mcpvisor.specs import ServerSpec, SupervisorSpec, qualify, split_qualified
from mcpvisor.specs.errors import ConfigError, UsageError
from mcpvisor.specs.handlers import ClientHandlers, LogLevel
from mcpvisor.supervisor import answering
from mcpvisor.supervisor.answering import ResourceUpdated, Unroutable
from mcpvisor.supervisor.errors import UnknownServerError, UnknownToolError, nearest
from mcpvisor.supervisor.events import Subscription
from mcpvisor.supervisor.lifecycle import ServerState
from mcpvisor.supervisor.reconfigure import ReconfigureReport
from mcpvisor.supervisor.status import ServerStatus, SupervisorStatus
from mcpvisor.workers import listing
from mcpvisor.workers.catalog import Catalog
from mcpvisor.workers.operations import (
    OPERATIONS,
    CallTool,
    GetPrompt,
    Operation,
    ProgressCallback,
    ReadResource,
)

if TYPE_CHECKING:
    from mcp_types import (
        CallToolResult,
        GetPromptResult,
        Prompt,
        ReadResourceResult,
        Resource,
        ResourceTemplate,
        Tool,
    )

    from mcpvisor.supervisor.interface import RuntimeInterface, Snapshot


@attrs.frozen
class ToolEntry:
    """One tool in the aggregated list: ``qualified_name`` is ``server__tool``."""

    server: str
    name: str
    tool: Tool
    state: ServerState

    @property
    def qualified_name(self) -> str:
        """The namespaced name a host hands to an LLM: ``server__tool``."""
        return qualify(self.server, self.name)


def _serving(status: ServerStatus) -> bool:
    """ACTIVE, or STOPPED by idle shutdown or laziness (a request wakes it)."""
    return status.state is ServerState.ACTIVE or (
        status.state is ServerState.STOPPED and status.wakeable
    )


class SupervisorClient:
    """Send requests to supervised servers, watch their lifecycle, read their status.

    Requests to an ACTIVE server go straight through. A server that is STARTING, or FAILED
    with a restart pending, makes the request wait for it within the request's deadline
    (``timeout=``, else the server's ``timeouts.request``, and the caller's own cancel
    scopes). A DROPPED or STOPPED server fails the request at once with
    :class:`ServerUnavailableError`. A request in flight when its server crashes, or when a
    host command stops, restarts, drops or removes it, fails at once with
    :class:`RequestInterruptedError`; operations that are ``retry_safe`` (every read) are
    retried once on the next session, ``call_tool`` never.

    Every caller mistake (arguments that are not a mapping or cannot travel as JSON, an
    unknown operation, a missing argument, a ``timeout`` that is not a positive finite number,
    ``subscribe(buffer=0)``) raises :class:`~mcpvisor.UsageError` naming the parameter and
    the server, and touches no session.

    Listings (:meth:`list_tools`, :meth:`list_resources`, :meth:`list_resource_templates`,
    :meth:`list_prompts`, :meth:`catalog`) read each server's current
    :class:`~mcpvisor.Catalog`, kept fresh by ``list_changed``; they never make a round trip.
    """

    def __init__(self, runtime: RuntimeInterface) -> None:
        self._runtime = runtime

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

        Returns the SDK's ``CallToolResult``; a result with ``is_error`` set is a result, not an
        exception. Errors the server answers with arrive unchanged as the SDK's ``MCPError``.
        ``progress(progress, total, message)`` receives the server's progress notifications (awaited
        if it is async; a plain function is just called); ``meta`` is sent as the request's
        ``_meta``. ``handlers`` answer the questions the server asks during this call (sampling,
        elicitation, roots) instead of the server's own; see "Answering servers" in the README.
        Where the session cannot tell which request asked (2025-era stdio, SSE, in-process),
        ``unroutable="isolate"`` runs the call on an isolated session built with ``handlers``;
        ``"share"`` runs it on the shared session, whose own handlers then answer over stdio and SSE
        (what a gateway wants: no new process per call). A name without ``__`` and no arguments of
        its own raises :class:`~mcpvisor.UsageError`.
        """
        if isinstance(tool_or_arguments, str):
            server, tool = server_or_qualified, tool_or_arguments
        else:
            parts = split_qualified(server_or_qualified)
            if parts is None:
                raise self._unqualified(server_or_qualified)
            server, tool = parts
            arguments = tool_or_arguments
        if handlers is not None:
            tool_args = arguments
            kwargs: dict[str, Any] = {"timeout": timeout, "progress": progress, "meta": meta}

            async def shared() -> CallToolResult:
                return await self.call_tool(server, tool, tool_args, **kwargs)

            async def isolated(session: IsolatedSession) -> CallToolResult:
                return await session.call_tool(tool, tool_args, **kwargs)

            return await answering.routed_request(
                self, server, handlers, unroutable, self._runtime.answering, shared, isolated
            )
        snapshot = self._runtime.snapshot()
        status = snapshot.status.servers.get(server)
        unknown: UnknownToolError | None = None
        if status is not None:
            catalog = snapshot.catalog(server)
            tools = catalog.tools
            # Refused only against a listing that cannot have been cut: a tool past the cut
            # exists.
            if (
                tools
                and len(tools) < listing.MAX_LIST_ITEMS
                and status.state is ServerState.ACTIVE
                and catalog.tool(tool) is None
            ):
                unknown = UnknownToolError(server, tool, [t.name for t in tools])

        def build() -> CallTool:
            # Raised from inside the request (as an unknown server is), so hooks count it.
            if unknown is not None:
                raise unknown
            return CallTool(name=tool, arguments=arguments, meta=meta, progress=progress)

        result: CallToolResult = await self._runtime.dispatch(  # type: ignore[assignment]
            server, "call_tool", build, timeout=timeout
        )
        return result

    async def read_resource(
        self,
        server: str,
        uri: str,
        *,
        timeout: float | None = None,
        handlers: ClientHandlers | None = None,
        unroutable: Unroutable = "isolate",
    ) -> ReadResourceResult:
        """Read one resource from ``server``. ``handlers`` and ``unroutable`` answer the
        server's questions during the read, as for :meth:`call_tool`."""
        if handlers is not None:

            async def shared() -> ReadResourceResult:
                return await self.read_resource(server, uri, timeout=timeout)

            async def isolated(session: IsolatedSession) -> ReadResourceResult:
                return await session.read_resource(uri, timeout=timeout)

            return await answering.routed_request(
                self, server, handlers, unroutable, self._runtime.answering, shared, isolated
            )
        result: ReadResourceResult = await self._runtime.dispatch(  # type: ignore[assignment]
            server, "read_resource", lambda: ReadResource(uri=uri), timeout=timeout
        )
        return result

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
        """Render prompt ``name`` of ``server`` with ``arguments`` (strings). ``handlers`` and
        ``unroutable`` answer the server's questions while it renders, as for
        :meth:`call_tool`."""
        if handlers is not None:

            async def shared() -> GetPromptResult:
                return await self.get_prompt(server, name, arguments, timeout=timeout)

            async def isolated(session: IsolatedSession) -> GetPromptResult:
                return await session.get_prompt(name, arguments, timeout=timeout)

            return await answering.routed_request(
                self, server, handlers, unroutable, self._runtime.answering, shared, isolated
            )
        result: GetPromptResult = await self._runtime.dispatch(  # type: ignore[assignment]
            server,
            "get_prompt",
            lambda: GetPrompt(name=name, arguments=arguments),
            timeout=timeout,
        )
        return result

    async def request(
        self,
        server: str,
        op: str | Operation,
        args: Mapping[str, Any] | None = None,
        *,
        timeout: float | None = None,
    ) -> Any:
        """Send any operation: ``request("files", "complete", {"ref": ..., "argument": ...})``.

        ``op`` names one of the worker's operations (``list_tools``, ``call_tool``,
        ``list_resource_templates``, ``complete``, ``set_logging_level``, ``probe``...) and
        ``args`` holds its fields; or ``op`` is an :class:`~mcpvisor.workers.operations.
        Operation` value, and ``args`` must be None. Listings return one page, as the SDK's
        ``List*Result``.
        """
        if isinstance(op, Operation):
            operation = op
            if args is not None:
                raise UsageError("args", "must be None when op is an Operation", server=server)
            return await self._runtime.dispatch(
                server, operation.name, lambda: operation, timeout=timeout
            )
        name = op if isinstance(op, str) else type(op).__name__
        return await self._runtime.dispatch(
            server, name, lambda: _from_args(op, args), timeout=timeout
        )

    # ---- answering servers ------------------------------------------------------------------

    async def subscribe_resource(self, server: str, uri: str) -> None:
        """Subscribe to changes of ``uri`` on ``server``, now and after every restart.

        Updates arrive as :class:`~mcpvisor.ResourceUpdated` on :meth:`resource_updates`, one
        per change. 2025-era sessions send ``resources/subscribe``; 2026-07-28 ones hold a
        ``subscriptions/listen`` stream. Returns once the live session has the subscription
        in effect (the server answered the request, or acknowledged the stream), so a change
        made after it returns is reported; it waits at most the server's request timeout,
        after which the session keeps trying on its own. A session still starting has it in
        effect before it is reported ready. Raises :class:`~mcpvisor.UsageError` if the
        running server offers no subscriptions.
        """
        self._runtime.answering.subscribe_resource(server, uri)
        await self._runtime.answering.settle([server])

    async def unsubscribe_resource(self, server: str, uri: str) -> None:
        """Stop the subscription to ``uri`` on ``server`` (no error if there was none).

        Returns once the live session has dropped it, waiting as :meth:`subscribe_resource`
        does; an update already on its way may still arrive."""
        self._runtime.answering.unsubscribe_resource(server, uri)
        await self._runtime.answering.settle([server])

    async def set_roots(self, roots: Any, *, server: str | None = None) -> None:
        """Replace the roots every server (or only ``server``) is given, and tell live sessions.

        ``roots`` is a list of ``file://`` URIs or ``Root`` objects, or a roots handler.
        Returns once each live 2025-era session has been sent
        ``notifications/roots/list_changed``, waiting at most each server's request timeout.
        """
        names = self._runtime.answering.set_roots(roots, server)
        await self._runtime.answering.settle(names)

    async def set_logging_level(self, server: str, level: LogLevel) -> None:
        """Ask ``server`` for log records at ``level`` and above, now and after restarts.

        Returns once a live 2025-era session has answered ``logging/setLevel``, waiting at
        most the server's request timeout."""
        self._runtime.answering.set_log_level(server, level)
        await self._runtime.answering.settle([server])

    def resource_updates(
        self, *, buffer: int = 1024
    ) -> AbstractAsyncContextManager[AsyncIterator[ResourceUpdated]]:
        """Receive every :class:`~mcpvisor.ResourceUpdated` of subscribed resources while the
        block runs. Holds at most ``buffer`` unread updates; past that the oldest are dropped.
        """
        return self._runtime.answering.feed(buffer)

    # ---- catalogs ---------------------------------------------------------------------------

    def catalog(self, server: str) -> Catalog:
        """``server``'s current catalog: every tool, resource, template and prompt it lists,
        its instructions and capabilities, replaced whole after each ``list_changed``.

        A server that was never ready has :data:`~mcpvisor.EMPTY_CATALOG`; a server that is
        restarting keeps its last one until the new session is ready.
        """
        snapshot = self._runtime.snapshot()
        if server not in snapshot.status.servers:
            raise UnknownServerError(server, self._names(snapshot))
        return snapshot.catalog(server)

    async def list_tools(self, *, include_unavailable: bool = False) -> list[ToolEntry]:
        """Every tool of every serving server, from the catalogs; never makes a round trip.

        Serving means ACTIVE, or STOPPED by idle shutdown (a call wakes it); a lazy server's
        tools are known once it has started. ``include_unavailable=True`` adds the last known
        tools of the other servers. Each entry carries its server's state.
        """
        await trio.lowlevel.checkpoint()
        snapshot = self._runtime.snapshot()
        out: list[ToolEntry] = []
        for name, status in snapshot.status.servers.items():
            if status.isolated_of is not None:
                continue
            if not include_unavailable and not _serving(status):
                continue
            out.extend(
                ToolEntry(name, t.name, t, status.state) for t in snapshot.catalog(name).tools
            )
        return out

    async def list_resources(self) -> list[tuple[str, Resource]]:
        """``(server, Resource)`` pairs over ACTIVE servers, from their catalogs."""
        return [(name, item) for name, c in await self._active() for item in c.resources]

    async def list_resource_templates(self) -> list[tuple[str, ResourceTemplate]]:
        """``(server, ResourceTemplate)`` pairs over ACTIVE servers, from their catalogs."""
        return [(name, item) for name, c in await self._active() for item in c.resource_templates]

    async def list_prompts(self) -> list[tuple[str, Prompt]]:
        """``(server, Prompt)`` pairs over ACTIVE servers, from their catalogs."""
        return [(name, item) for name, c in await self._active() for item in c.prompts]

    async def _active(self) -> list[tuple[str, Catalog]]:
        await trio.lowlevel.checkpoint()
        snapshot = self._runtime.snapshot()
        return [
            (name, snapshot.catalog(name))
            for name, status in snapshot.status.servers.items()
            if status.isolated_of is None and status.state is ServerState.ACTIVE
        ]

    def _unqualified(self, name: str) -> UsageError:
        """``call_tool(name, arguments)`` without a server in ``name``: say how to write it,
        and which configured tool it may mean."""
        snapshot = self._runtime.snapshot()
        known = [
            qualify(server, tool.name)
            for server in self._names(snapshot)
            for tool in snapshot.catalog(server).tools
        ]
        message = "a tool named without its server must be written server__tool"
        suggestion = nearest(name, known)
        if suggestion:
            message += f"; did you mean {suggestion!r}?"
        return UsageError("server_or_qualified", message)

    @staticmethod
    def _names(snapshot: Snapshot) -> list[str]:
        return [n for n, s in snapshot.status.servers.items() if s.isolated_of is None]

    # ---- observation ----------------------------------------------------------------------

    def status(self) -> SupervisorStatus:
        """A snapshot of every server, for a health endpoint: see :class:`SupervisorStatus`.

        It reflects the runtime's last decision: a server whose session was lost is no longer
        ACTIVE (and shows no pid) from the moment the loss is known.
        """
        status = self._runtime.snapshot().status
        return attrs.evolve(status, at=trio.current_time())

    def subscribe(self, *, buffer: int = 1024) -> AbstractAsyncContextManager[Subscription]:
        """Receive every lifecycle event from now on while the block runs.

        ``async with client.subscribe() as events: async for event in events: ...`` yields
        :class:`LifecycleEvent` s (state changes, escalations, and ``tools_changed``,
        ``resources_changed``, ``prompts_changed`` after each refetch). The subscription holds
        at most ``buffer`` unread events (``UsageError`` below 1); past that the oldest are
        discarded and an :class:`EventsLost` marker is delivered. Supervision never waits for
        a subscriber.
        """
        return self._runtime.subscribe(buffer=buffer)

    async def aclose(self) -> None:
        """Shut the supervisor down (what leaving ``open_supervisor``'s block does)."""
        await self._runtime.close()

    # ---- control ----------------------------------------------------------------------------

    async def restart(self, name: str) -> None:
        """Restart ``name`` now, skipping backoff; not counted against its restart budget.

        Requests in flight on the old session fail at once (reads are retried on the new one).
        The new session starts once the old one has ended (a wait bounded by the old session's
        ``timeouts.shutdown`` plus a second), so the server never runs twice at once; queued
        requests wait for it.
        """
        self._runtime.control("restart", name)
        await trio.lowlevel.checkpoint()

    async def stop(self, name: str) -> None:
        """Stop ``name`` on purpose (STOPPED); its requests fail at once until it is revived."""
        self._runtime.control("stop", name)
        await trio.lowlevel.checkpoint()

    async def drop(self, name: str) -> None:
        """Give up on ``name`` (DROPPED) as if its budget were spent; ``revive`` undoes it."""
        self._runtime.control("drop", name)
        await trio.lowlevel.checkpoint()

    async def revive(self, name: str) -> None:
        """Start a DROPPED or STOPPED server again with a fresh restart budget."""
        self._runtime.control("revive", name)
        await trio.lowlevel.checkpoint()

    async def drop_failed_servers(self) -> list[str]:
        """Drop every server that is FAILED right now; returns their names.

        The OpenAI Agents SDK's ``MCPServerManager.drop_failed_servers()``, as one command.
        """
        await trio.lowlevel.checkpoint()
        failed = self._runtime.snapshot().status.failed
        for name in failed:
            self._runtime.control("drop", name)
        return failed

    async def add_server(self, spec: ServerSpec) -> ServerStatus:
        """Supervise a new server; returns its status once its first start attempt finished.

        A lazy server is not started: it returns STOPPED and wakes on its first request.
        """
        return await self._runtime.add(spec)

    async def remove_server(self, name: str) -> None:
        """Stop ``name`` and forget it; its requests, in flight or waiting, fail at once."""
        await self._runtime.remove(name)

    async def reconfigure(self, spec: SupervisorSpec) -> ReconfigureReport:
        """Make the running supervisor match ``spec``; returns what changed.

        The difference is applied in one step: servers not in ``spec`` are removed, new ones
        added, servers whose session-shaping fields changed (command, args, env, url,
        headers... see :data:`~mcpvisor.supervisor.reconfigure.IN_PLACE_FIELDS`) restarted in
        declared order with a fresh restart budget, and supervision-only changes (restart
        policy, group, required, request timeout) and group strategies take effect in place.
        Unchanged servers and their in-flight requests are not touched. A spec that cannot
        be applied raises :class:`ConfigError` before anything changes. Either way a
        ``"reload"`` event (server ``"*"``, reason ``applied`` or ``rejected``) is published.
        Returns once every added or restarted server has finished its first start attempt.
        """
        return await self._runtime.reconfigure(spec)

    async def reload(self, load: Callable[[], SupervisorSpec]) -> ReconfigureReport:
        """:meth:`reconfigure` to ``load()``, such as ``lambda: load_config(path)``.

        A ``load`` that raises :class:`ConfigError` or :class:`OSError` (an unreadable file)
        is published as a rejected ``"reload"`` event too, and re-raised; the running
        configuration stays as it was.
        """
        try:
            spec = load()
        except (ConfigError, OSError) as error:
            self._runtime.reject_reload(error)
            raise
        return await self.reconfigure(spec)

    @asynccontextmanager
    async def isolated(
        self, name: str, *, handlers: ClientHandlers | None = None
    ) -> AsyncIterator[IsolatedSession]:
        """A dedicated, fresh session to ``name`` for the block, torn down on exit.

        AG2's session-per-query pattern, done safely: the session lives in a temporary worker
        in the supervisor's nursery (visible in ``status()`` as ``name~N``, emitting events
        like any worker) and is stopped when the block exits, even on error or cancellation.
        At most ``max_isolated`` of a server's isolated sessions exist at once; more callers
        wait their turn. Never restarted: if it crashes, its requests fail. ``handlers``
        (over the server's own) answer what the server asks this session.
        """
        async with self._runtime.isolated(name, handlers) as label:
            yield IsolatedSession(self, label, name)


def _from_args(op: object, args: object) -> Operation:
    kind = OPERATIONS.get(op) if isinstance(op, str) else None
    if kind is None:
        raise UsageError("op", f"unknown operation; expected one of {', '.join(OPERATIONS)}")
    if args is None:
        args = {}
    if not isinstance(args, Mapping):
        raise UsageError("args", f"must be a mapping, not {type(args).__name__}")
    return kind.from_args(args)


class IsolatedSession:
    """Requests bound to one isolated session; the same methods as the client, minus routing."""

    def __init__(self, client: SupervisorClient, label: str, server: str) -> None:
        self._client = client
        self.label = label
        """The session's name in status and events: ``server~N``."""
        self.server = server
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
        return await self._client.call_tool(
            self.label, tool, arguments, timeout=timeout, progress=progress, meta=meta
        )

    def catalog(self) -> Catalog:
        """This session's catalog, as of its start or its last list_changed."""
        return self._client.catalog(self.label)

    async def list_tools(self) -> list[ToolEntry]:
        """This session's tools, from its catalog."""
        await trio.lowlevel.checkpoint()
        tools = self.catalog().tools
        return [ToolEntry(self.server, t.name, t, ServerState.ACTIVE) for t in tools]

    async def read_resource(self, uri: str, *, timeout: float | None = None) -> ReadResourceResult:
        """Read one resource."""
        return await self._client.read_resource(self.label, uri, timeout=timeout)

    async def get_prompt(
        self, name: str, arguments: Mapping[str, str] | None = None, *, timeout: float | None = None
    ) -> GetPromptResult:
        """Render one prompt."""
        return await self._client.get_prompt(self.label, name, arguments, timeout=timeout)

    async def list_resources(self) -> list[Resource]:
        """This session's resources, from its catalog."""
        await trio.lowlevel.checkpoint()
        return list(self.catalog().resources)

    async def list_resource_templates(self) -> list[ResourceTemplate]:
        """This session's resource templates, from its catalog."""
        await trio.lowlevel.checkpoint()
        return list(self.catalog().resource_templates)

    async def list_prompts(self) -> list[Prompt]:
        """This session's prompts, from its catalog."""
        await trio.lowlevel.checkpoint()
        return list(self.catalog().prompts)

    async def request(
        self,
        op: str | Operation,
        args: Mapping[str, Any] | None = None,
        *,
        timeout: float | None = None,
    ) -> Any:
        """Send any operation to this session (see :meth:`SupervisorClient.request`)."""
        return await self._client.request(self.label, op, args, timeout=timeout)
