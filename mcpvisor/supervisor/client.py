"""The handle a host uses: requests routed to workers, aggregation, events, status, control."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import TYPE_CHECKING, Any

import attrs
import trio

from mcpvisor.specs import NAME_SEPARATOR, ConfigError, Problem, ServerSpec, SupervisorSpec
from mcpvisor.supervisor.errors import (
    ServerUnavailableError,
    UnknownServerError,
    UnknownToolError,
)
from mcpvisor.supervisor.events import Subscription
from mcpvisor.supervisor.lifecycle import (
    CommandRefusedError,
    Drop,
    Remove,
    RestartNow,
    Revive,
    ServerState,
    Stop,
    Wake,
)
from mcpvisor.supervisor.reconfigure import ReconfigureReport, reload_event
from mcpvisor.supervisor.status import ServerStatus, SupervisorStatus
from mcpvisor.workers import (
    OPERATIONS,
    Envelope,
    Reply,
    Request,
    RequestInterruptedError,
    RequestTimeoutError,
)

if TYPE_CHECKING:
    from mcp_types import CallToolResult, GetPromptResult, ReadResourceResult, Tool

    from mcpvisor.supervisor.runtime import Supervisor, _Slot

IDEMPOTENT: frozenset[str] = frozenset(OPERATIONS) - {"call_tool"}
"""Operations retried once after a crash interrupts them. ``call_tool`` never is: a tool may
have had effects before the server died."""


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
        return f"{self.server}{NAME_SEPARATOR}{self.name}"


class SupervisorClient:
    """Send requests to supervised servers, watch their lifecycle, read their status.

    Requests to an ACTIVE server go straight through. A server that is STARTING, or FAILED
    with a restart pending, makes the request wait for it within the request's deadline
    (``timeout=``, else the server's ``timeouts.request``, and the caller's own cancel
    scopes). A DROPPED or STOPPED server fails the request at once with
    :class:`ServerUnavailableError`. A request in flight when its server crashes fails with
    :class:`RequestInterruptedError`; idempotent operations are retried once after the
    restart, ``call_tool`` never.
    """

    def __init__(self, supervisor: Supervisor) -> None:
        self._sup = supervisor

    # ---- requests -----------------------------------------------------------------------

    async def _acquire(self, name: str) -> tuple[_Slot, trio.MemorySendChannel[Envelope]]:
        sup = self._sup
        while True:
            if sup._closing:
                raise ServerUnavailableError(name, None, "the supervisor is shutting down")
            slot = sup._slots.get(name)
            if slot is None:
                raise UnknownServerError(name, sup._order)
            record = sup._lifecycle.record(name)
            if record.state is ServerState.ACTIVE and slot.send is not None:
                return slot, slot.send
            if record.state is ServerState.STOPPED and record.wakeable:
                sup._feed(Wake(name, trio.current_time()))
                continue
            if record.state in (ServerState.DROPPED, ServerState.STOPPED):
                raise ServerUnavailableError(name, record.state, record.last_cause)
            changed = slot.changed
            await changed.wait()
            if slot.removed:
                raise ServerUnavailableError(name, None, "the server was removed")

    async def _request(self, name: str, request: Request, timeout: float | None) -> Any:
        slot = self._sup._slots.get(name)
        if slot is None:
            raise UnknownServerError(name, self._sup._order)
        limit = slot.spec.timeouts.request if timeout is None else timeout
        deadline = trio.current_time() + limit
        with trio.CancelScope(deadline=deadline) as bound:
            retried = False
            while True:
                try:
                    return await self._send(name, request, deadline)
                except RequestInterruptedError as error:
                    # A request that never reached the server waits for the next session,
                    # whatever it is; one that did is retried only if it is idempotent.
                    if error.sent and (retried or request.op not in IDEMPOTENT):
                        raise
                    if slot.removed:
                        raise ServerUnavailableError(
                            name, None, "the server was removed"
                        ) from error
                    retried = retried or error.sent
        assert bound.cancelled_caught
        raise RequestTimeoutError(name, request.op, limit)

    async def _send(self, name: str, request: Request, deadline: float) -> Any:
        slot, send = await self._acquire(name)
        envelope = Envelope(
            request=request, reply=Reply(), scope=trio.CancelScope(), deadline=deadline
        )
        slot.inflight += 1
        slot.last_used = trio.current_time()
        try:
            try:
                # The reply wait below is the checkpoint; a free buffer slot needs no yield.
                try:
                    send.send_nowait(envelope)
                except trio.WouldBlock:
                    await send.send(envelope)
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                raise RequestInterruptedError(
                    name, request.op, "the server went away", sent=False
                ) from None
            return await envelope.reply.wait()
        except trio.Cancelled:
            envelope.scope.cancel()
            raise
        finally:
            slot.inflight -= 1
            slot.last_used = trio.current_time()

    async def call_tool(
        self,
        server_or_qualified: str,
        tool_or_arguments: str | Mapping[str, Any] | None = None,
        arguments: Mapping[str, Any] | None = None,
        *,
        timeout: float | None = None,
        progress: Any = None,
    ) -> CallToolResult:
        """Call a tool: ``call_tool("files", "read", {...})`` or ``call_tool("files__read", {})``.

        Returns the SDK's ``CallToolResult``; a result with ``isError`` is a result, not an
        exception. Errors the server answers with arrive unchanged as the SDK's ``MCPError``.
        ``progress(progress, total, message)`` receives the server's progress notifications.
        """
        if isinstance(tool_or_arguments, str):
            server, tool = server_or_qualified, tool_or_arguments
        else:
            server, sep, tool = server_or_qualified.partition(NAME_SEPARATOR)
            if not sep or not tool:
                raise UnknownToolError(server, tool or server_or_qualified, ())
            arguments = tool_or_arguments
        slot = self._sup._slots.get(server)
        if slot is None:
            raise UnknownServerError(server, self._sup._order)
        if slot.tools and self._sup._lifecycle.state_of(server) is ServerState.ACTIVE:
            names = [t.name for t in slot.tools]
            if tool not in names:
                raise UnknownToolError(server, tool, names)
        request = Request(
            op="call_tool",
            args={"name": tool, "arguments": dict(arguments or {})},
            progress=progress,
        )
        result: CallToolResult = await self._request(server, request, timeout)
        return result

    async def read_resource(
        self, server: str, uri: str, *, timeout: float | None = None
    ) -> ReadResourceResult:
        """Read one resource from ``server``."""
        result: ReadResourceResult = await self._request(
            server, Request(op="read_resource", args={"uri": uri}), timeout
        )
        return result

    async def get_prompt(
        self,
        server: str,
        name: str,
        arguments: Mapping[str, str] | None = None,
        *,
        timeout: float | None = None,
    ) -> GetPromptResult:
        """Render prompt ``name`` of ``server`` with ``arguments``."""
        result: GetPromptResult = await self._request(
            server,
            Request(op="get_prompt", args={"name": name, "arguments": dict(arguments or {})}),
            timeout,
        )
        return result

    async def request(
        self,
        server: str,
        op: str,
        args: Mapping[str, Any] | None = None,
        *,
        timeout: float | None = None,
    ) -> Any:
        """Send any worker operation (``complete``, ``list_resource_templates``, ``probe``...)."""
        return await self._request(server, Request(op=op, args=dict(args or {})), timeout)  # type: ignore[arg-type]

    # ---- aggregation ----------------------------------------------------------------------

    async def list_tools(self, *, include_unavailable: bool = False) -> list[ToolEntry]:
        """Every tool of every serving server, from caches kept fresh by list_changed.

        Serving means ACTIVE, or STOPPED by idle shutdown (a call wakes it); a lazy server's
        tools are known once it has started. ``include_unavailable=True`` adds the last known
        tools of the other servers. Each entry carries its server's state. Never makes a
        round trip.
        """
        await trio.lowlevel.checkpoint()
        life = self._sup._lifecycle
        out: list[ToolEntry] = []
        for name in self._sup._order:
            slot = self._sup._slots[name]
            if slot.isolated_of is not None:
                continue
            record = life.record(name)
            serving = record.state is ServerState.ACTIVE or (
                record.state is ServerState.STOPPED and record.wakeable
            )
            if not serving and not include_unavailable:
                continue
            out.extend(ToolEntry(name, t.name, t, record.state) for t in slot.tools)
        return out

    async def _aggregate(self, op: str) -> list[tuple[str, Any]]:
        """Cached items of ``op`` over ACTIVE servers: seeded at ready, refreshed on changes."""
        await trio.lowlevel.checkpoint()
        life = self._sup._lifecycle
        out: list[tuple[str, Any]] = []
        for name in self._sup._order:
            slot = self._sup._slots[name]
            if slot.isolated_of is None and life.state_of(name) is ServerState.ACTIVE:
                out.extend((name, item) for item in slot.lists.get(op, ()))
        return out

    async def list_resources(self) -> list[tuple[str, Any]]:
        """``(server, Resource)`` pairs over ACTIVE servers, cached per server session."""
        return await self._aggregate("list_resources")

    async def list_prompts(self) -> list[tuple[str, Any]]:
        """``(server, Prompt)`` pairs over ACTIVE servers, cached per server session."""
        return await self._aggregate("list_prompts")

    # ---- observation ----------------------------------------------------------------------

    def status(self) -> SupervisorStatus:
        """A snapshot of every server, for a health endpoint: see :class:`SupervisorStatus`."""
        return self._sup._status()

    def subscribe(self, *, buffer: int = 1024) -> AbstractAsyncContextManager[Subscription]:
        """Receive every lifecycle event from now on while the block runs.

        ``async with client.subscribe() as events: async for event in events: ...`` yields
        :class:`LifecycleEvent` s. The subscription holds at most ``buffer`` unread events;
        past that the oldest are discarded and an :class:`EventsLost` marker is delivered.
        Supervision never waits for a subscriber.
        """
        return self._sup.subscribe(buffer=buffer)

    async def aclose(self) -> None:
        """Shut the supervisor down (what leaving ``open_supervisor``'s block does)."""
        await self._sup.aclose()

    # ---- control ----------------------------------------------------------------------------

    def _command(self, command: type[Any], name: str) -> None:
        if name not in self._sup._slots:
            raise UnknownServerError(name, self._sup._order)
        self._sup._feed(command(name, trio.current_time()))

    async def restart(self, name: str) -> None:
        """Restart ``name`` now, skipping backoff; not counted against its restart budget."""
        self._command(RestartNow, name)
        await trio.lowlevel.checkpoint()

    async def stop(self, name: str) -> None:
        """Stop ``name`` on purpose (STOPPED); its requests fail until it is revived."""
        self._command(Stop, name)
        await trio.lowlevel.checkpoint()

    async def drop(self, name: str) -> None:
        """Give up on ``name`` (DROPPED) as if its budget were spent; ``revive`` undoes it."""
        self._command(Drop, name)
        await trio.lowlevel.checkpoint()

    async def revive(self, name: str) -> None:
        """Start a DROPPED or STOPPED server again with a fresh restart budget."""
        self._command(Revive, name)
        await trio.lowlevel.checkpoint()

    async def drop_failed_servers(self) -> list[str]:
        """Drop every server that is FAILED right now; returns their names.

        The OpenAI Agents SDK's ``MCPServerManager.drop_failed_servers()``, as one command.
        """
        await trio.lowlevel.checkpoint()
        life = self._sup._lifecycle
        failed = [
            n
            for n in self._sup._order
            if life.state_of(n) is ServerState.FAILED and self._sup._slots[n].isolated_of is None
        ]
        for name in failed:
            self._command(Drop, name)
        return failed

    async def add_server(self, spec: ServerSpec) -> ServerStatus:
        """Supervise a new server; returns its status once its first start attempt finished.

        A lazy server is not started: it returns STOPPED and wakes on its first request.
        """
        sup = self._sup
        if sup._closing:
            raise ServerUnavailableError(spec.name, None, "the supervisor is shutting down")
        if spec.name in sup._slots:
            raise CommandRefusedError(
                spec.name,
                "add",
                sup._lifecycle.state_of(spec.name),
                "a server of that name is already supervised",
            )
        if spec.group is not None and spec.group not in sup.spec.groups:
            raise ConfigError([Problem(f"{spec.name}.group", f"unknown group {spec.group!r}")])
        sup._add(spec)
        slot = sup._slots[spec.name]
        while not slot.removed and sup._lifecycle.state_of(spec.name) is ServerState.STARTING:
            await slot.changed.wait()
        if slot.removed or sup._closing:
            raise ServerUnavailableError(spec.name, None, "the server was removed")
        return sup._status().servers[spec.name]

    async def remove_server(self, name: str) -> None:
        """Stop ``name`` and forget it; requests waiting for it get ServerUnavailableError."""
        slot = self._sup._slots.get(name)
        self._command(Remove, name)
        if slot is not None:
            with trio.move_on_after(slot.spec.timeouts.shutdown + 1.0):
                await slot.worker_done.wait()

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
        sup = self._sup
        if sup._closing:
            raise ServerUnavailableError("*", None, "the supervisor is shutting down")
        report = sup._reconfigure(spec)
        for name in (*report.added, *report.restarted):
            slot = sup._slots.get(name)
            while (
                slot is not None
                and not slot.removed
                and not sup._closing
                and sup._lifecycle.state_of(name) is ServerState.STARTING
            ):
                await slot.changed.wait()
        await trio.lowlevel.checkpoint()
        return report

    async def reload(self, load: Callable[[], SupervisorSpec]) -> ReconfigureReport:
        """:meth:`reconfigure` to ``load()``, such as ``lambda: load_config(path)``.

        A ``load`` that raises :class:`ConfigError` or :class:`OSError` (an unreadable file)
        is published as a rejected ``"reload"`` event too, and re-raised; the running
        configuration stays as it was.
        """
        try:
            spec = load()
        except (ConfigError, OSError) as error:
            self._sup._on_event(reload_event(trio.current_time(), error=error))
            raise
        return await self.reconfigure(spec)

    @asynccontextmanager
    async def isolated(self, name: str) -> AsyncIterator[IsolatedSession]:
        """A dedicated, fresh session to ``name`` for the block, torn down on exit.

        AG2's session-per-query pattern, done safely: the session lives in a temporary worker
        in the supervisor's nursery (visible in ``status()`` as ``name~N``, emitting events
        like any worker) and is stopped when the block exits, even on error or cancellation.
        At most ``max_isolated`` of a server's isolated sessions exist at once; more callers
        wait their turn. Never restarted: if it crashes, its requests fail.
        """
        sup = self._sup
        if sup._closing:
            raise ServerUnavailableError(name, None, "the supervisor is shutting down")
        slot = sup._slots.get(name)
        if slot is None or slot.isolated_of is not None:
            raise UnknownServerError(name, sup._order)
        limit = sup._isolation_limit(name)
        async with limit:
            label = sup._add_isolated(slot.spec)
            try:
                iso = sup._slots[label]
                while sup._lifecycle.state_of(label) is ServerState.STARTING:
                    await iso.changed.wait()
                state = sup._lifecycle.record(label)
                if state.state is not ServerState.ACTIVE:
                    raise ServerUnavailableError(label, state.state, state.last_cause)
                yield IsolatedSession(self, label, name)
            finally:
                with trio.CancelScope(shield=True):
                    await sup._remove_isolated(label)


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
        progress: Any = None,
    ) -> CallToolResult:
        """Call ``tool`` on this session's server."""
        return await self._client.call_tool(
            self.label, tool, arguments, timeout=timeout, progress=progress
        )

    async def list_tools(self) -> list[ToolEntry]:
        """This session's tools, as of its start or its last list_changed."""
        await trio.lowlevel.checkpoint()
        slot = self._client._sup._slots.get(self.label)
        tools = slot.tools if slot is not None else ()
        return [ToolEntry(self.server, t.name, t, ServerState.ACTIVE) for t in tools]

    async def read_resource(self, uri: str, *, timeout: float | None = None) -> ReadResourceResult:
        """Read one resource."""
        return await self._client.read_resource(self.label, uri, timeout=timeout)

    async def get_prompt(
        self, name: str, arguments: Mapping[str, str] | None = None, *, timeout: float | None = None
    ) -> GetPromptResult:
        """Render one prompt."""
        return await self._client.get_prompt(self.label, name, arguments, timeout=timeout)

    async def list_resources(self, *, timeout: float | None = None) -> Any:
        """The server's resources, fetched now."""
        return await self._client.request(self.label, "list_resources", timeout=timeout)

    async def list_prompts(self, *, timeout: float | None = None) -> Any:
        """The server's prompts, fetched now."""
        return await self._client.request(self.label, "list_prompts", timeout=timeout)
