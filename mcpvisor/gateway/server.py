"""The gateway itself: one SDK low-level ``Server`` in front of every supervised server.

Listings come from the current :class:`~mcpvisor.gateway.view.View` (no round trip);
requests go through the supervisor's handle, so a call to a restarting server waits within
its deadline and a caller's cancellation reaches the server. A task watches the handle's
events and tells the gateway's clients when a listing changes: per connection for
handshake-era (2025) clients, through ``subscriptions/listen`` for 2026-07-28 ones.

What servers ask and say goes the other way through two relays: :mod:`.asking` (sampling,
elicitation, roots, the 2026 input-required flow) and :mod:`.notices` (resource subscriptions
and updates, log records). :func:`open_gateway` installs the supervisor-level part of both
(:class:`~mcpvisor.gateway.relay.Relay`) before the servers start.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Collection, Iterable, Mapping
from contextlib import asynccontextmanager, suppress
from importlib.metadata import version
from typing import Any, TypeVar

import mcp_types as types
import structlog
import trio
from mcp.server.context import ServerRequestContext
from mcp.server.lowlevel import NotificationOptions, Server
from mcp.server.session import ServerSession
from mcp.server.subscriptions import (
    InMemorySubscriptionBus,
    ListenHandler,
    PromptsListChanged,
    ResourcesListChanged,
    ServerEvent,
    ToolsListChanged,
)
from mcp.shared.exceptions import MCPError

from mcpvisor.gateway import source
from mcpvisor.gateway.asking import Asking
from mcpvisor.gateway.notices import Notices
from mcpvisor.gateway.options import GatewayOptions
from mcpvisor.gateway.relay import Relay
from mcpvisor.gateway.view import (
    EMPTY_VIEW,
    View,
    build_view,
    resolve_name,
    resource_server,
    template_server,
)
from mcpvisor.specs import MCPVisorError, SupervisorSpec
from mcpvisor.specs.handlers import ClientHandlers
from mcpvisor.supervisor import Hooks, ServerUnavailableError, SupervisorClient, open_supervisor
from mcpvisor.workers import RequestInterruptedError, RequestTimeoutError
from mcpvisor.workers.catalog import CatalogPart

log = structlog.get_logger("mcpvisor")

_PER_HOP_META = "io.modelcontextprotocol/"
"""Reserved ``_meta`` keys describe one hop (protocol version, client info): the gateway's own
client session sets its own, so these are not forwarded, except the 2026-07-28 log-level
opt-in, which the downstream server must see to send this request's log records at all."""

_NOTIFY_TIMEOUT = 5.0
"""How long one client connection may take to accept a list_changed before it is dropped."""

_LEGACY_NOTICES: Mapping[CatalogPart, str] = {
    "tools": "send_tool_list_changed",
    "prompts": "send_prompt_list_changed",
    "resources": "send_resource_list_changed",
    "resource_templates": "send_resource_list_changed",
}
_MODERN_EVENTS: Mapping[CatalogPart, ServerEvent] = {
    "tools": ToolsListChanged(),
    "prompts": PromptsListChanged(),
    "resources": ResourcesListChanged(),
    "resource_templates": ResourcesListChanged(),
}


_RELISTED: Mapping[str, frozenset[CatalogPart]] = {
    "tools_changed": frozenset({"tools"}),
    "prompts_changed": frozenset({"prompts"}),
    "resources_changed": frozenset({"resources", "resource_templates"}),
}
"""The parts each catalog-change event kind says a server refetched."""

_UNAVAILABLE = (ServerUnavailableError, RequestTimeoutError, RequestInterruptedError)


def forwarded_meta(meta: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The caller's ``_meta`` as it goes downstream: without the progress token (the
    gateway's session sets its own and relays progress back) and without per-hop keys."""
    if not meta:
        return None
    out = {
        k: v
        for k, v in meta.items()
        if k not in ("progressToken", "progress_token")
        and (k == types.LOG_LEVEL_META_KEY or not k.startswith(_PER_HOP_META))
    }
    return out or None


def _progress_token(meta: Mapping[str, Any]) -> object:
    return meta.get("progress_token", meta.get("progressToken"))


_ResultT = TypeVar("_ResultT", bound=types.Result)


def own_hop(result: _ResultT) -> _ResultT:
    """``result`` without the downstream hop's reserved ``_meta`` keys (its ``serverInfo``):
    the gateway's own session stamps its own."""
    meta = result.meta
    if not meta or not any(k.startswith(_PER_HOP_META) for k in meta):
        return result
    kept = {k: v for k, v in meta.items() if not k.startswith(_PER_HOP_META)}
    return result.model_copy(update={"meta": kept or None})


class _Relay:
    """Progress from downstream to the gateway's client, in arrival order, never blocking.

    The SDK runs each progress callback in a task of its own, so a callback that waited for
    the client could be overtaken by the result; queueing at once and draining before the
    result goes out keeps every notification ahead of the response. A full queue drops
    progress (it is advisory) rather than stalling the call.
    """

    def __init__(self) -> None:
        self._send, self._receive = trio.open_memory_channel[
            tuple[float, float | None, str | None]
        ](256)

    async def __call__(self, progress: float, total: float | None, message: str | None) -> None:
        with suppress(trio.WouldBlock, trio.ClosedResourceError):
            self._send.send_nowait((progress, total, message))

    def close(self) -> None:
        self._send.close()

    async def forward(self, ctx: ServerRequestContext[Any]) -> None:
        async with self._receive:
            async for progress, total, message in self._receive:
                await ctx.session.report_progress(progress, total, message)


class Gateway:
    """Serves the supervised servers behind ``client`` as one MCP server.

    Run :meth:`run` in a nursery (``await nursery.start(gateway.run)``) before serving
    :attr:`server` over any transport: it builds the first view and keeps it current.
    ``required`` names the servers readiness waits for (default: the spec's required ones).
    ``relay`` is the :class:`~mcpvisor.gateway.relay.Relay` whose handlers the supervisor was
    built with (:func:`open_gateway` does both); without one, only questions and log records
    that the transport ties to a gateway request reach the gateway's clients.
    """

    def __init__(
        self,
        client: SupervisorClient,
        options: GatewayOptions | None = None,
        *,
        required: Collection[str] | None = None,
        relay: Relay | None = None,
    ) -> None:
        self.client = client
        self.options = options or GatewayOptions()
        if required is None:
            required = [n for n, s in client.status().servers.items() if s.required]
        self.required: frozenset[str] = frozenset(required)
        self.view: View = EMPTY_VIEW
        self._servers = source.configured(client)
        self._namespaced = self.options.namespaced(len(self._servers))
        self._sessions: dict[int, ServerSession] = {}
        self._bus = InMemorySubscriptionBus()
        self._listen = ListenHandler(self._bus)
        self.asking = Asking(self)
        self.notices = Notices(self)
        self.server: Server[Any] = Server(
            "mcpvisor",
            version=version("mcpvisor"),
            instructions=self._instructions(),
            on_list_tools=self._list_tools,
            on_call_tool=self._call_tool,
            on_list_resources=self._list_resources,
            on_list_resource_templates=self._list_resource_templates,
            on_read_resource=self._read_resource,
            on_list_prompts=self._list_prompts,
            on_get_prompt=self._get_prompt,
            on_completion=self._complete,
            on_subscriptions_listen=self.notices.listen,
        )
        self.server.add_notification_handler(
            "notifications/initialized", types.NotificationParams, self._on_initialized
        )
        # Registered by hand: the constructor's on_set_logging_level warns that 2026-07-28
        # deprecates logging, but 2025-era clients still set levels.
        self.server.add_request_handler(
            "logging/setLevel", types.SetLevelRequestParams, self._set_logging_level
        )
        self.notices.register()
        self.asking.register()
        self.relay = relay
        """The relay the supervisor's handlers come from, if :func:`open_gateway` built it."""
        if relay is not None:
            relay.bind(self)

    # ---- what the transports need -----------------------------------------------------

    def initialization_options(self) -> Any:
        """The options ``Server.run`` takes, advertising list_changed for every part."""
        return self.server.create_initialization_options(
            NotificationOptions(prompts_changed=True, resources_changed=True, tools_changed=True)
        )

    @property
    def namespaced(self) -> bool:
        """Whether names carry ``server__`` prefixes."""
        return self._namespaced

    @property
    def connections(self) -> int:
        """Handshake-era client connections currently told of list changes."""
        return len(self._sessions)

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Keep the view current and announce changes, until cancelled."""
        async with self.client.subscribe() as events, trio.open_nursery() as nursery:
            self.view = await self._build()
            await nursery.start(self.notices.run)
            await nursery.start(self.asking.run)
            task_status.started()
            async for event in events:
                kind = getattr(event, "kind", None)  # EventsLost has none: rebuild anyway
                await self.refresh(_RELISTED.get(kind or "", frozenset()))

    async def refresh(
        self, relisted: frozenset[CatalogPart] = frozenset()
    ) -> frozenset[CatalogPart]:
        """Rebuild the view from the handle's caches; announce and return what changed.

        ``relisted`` are parts a server said changed: they are announced even when the view
        shows no difference (a tool removed and added back), since the server's own clients
        would have been told too.
        """
        new = await self._build()
        changed = new.changed_parts(self.view) | relisted
        self.view = new
        if changed:
            log.debug("gateway.list_changed", parts=sorted(changed))
            await self.announce(changed)
        return changed

    # ---- listings -------------------------------------------------------------------------

    async def _build(self) -> View:
        await trio.lowlevel.checkpoint()
        # Servers added or removed at run time route too; whether names carry a prefix was
        # decided at the start, so a listed name never changes under a client.
        self._servers = source.configured(self.client)
        catalogs = source.catalogs(self.client)
        return build_view(catalogs, self.options, namespaced=self._namespaced)

    async def _list_tools(
        self, ctx: ServerRequestContext[Any], params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        return types.ListToolsResult(tools=list(self.view.tools))

    async def _list_prompts(
        self, ctx: ServerRequestContext[Any], params: types.PaginatedRequestParams | None
    ) -> types.ListPromptsResult:
        return types.ListPromptsResult(prompts=list(self.view.prompts))

    async def _list_resources(
        self, ctx: ServerRequestContext[Any], params: types.PaginatedRequestParams | None
    ) -> types.ListResourcesResult:
        return types.ListResourcesResult(resources=list(self.view.resources))

    async def _list_resource_templates(
        self, ctx: ServerRequestContext[Any], params: types.PaginatedRequestParams | None
    ) -> types.ListResourceTemplatesResult:
        return types.ListResourceTemplatesResult(
            resource_templates=list(self.view.resource_templates)
        )

    # ---- requests -------------------------------------------------------------------------

    def _resolve(self, kind: str, name: str) -> tuple[str, str]:
        route = resolve_name(
            self.view, kind, name, self._servers, self.options, namespaced=self._namespaced
        )
        if route is None:
            what = "tool" if kind == "tools" else "prompt"
            raise MCPError(types.INVALID_PARAMS, f"Unknown {what}: {name}")
        return route

    async def _call_tool(
        self, ctx: ServerRequestContext[Any], params: types.CallToolRequestParams
    ) -> types.CallToolResult | types.InputRequiredResult:
        if params.request_state is not None and self.asking.parks(ctx):
            # A 2026-07-28 retry resumes the call it names, wherever the tool is now.
            server, tool = "", params.name
        else:
            server, tool = self._resolve("tools", params.name)
        wants_progress = bool(ctx.meta) and _progress_token(ctx.meta or {}) is not None

        async def call(handlers: ClientHandlers, progress: Any) -> types.CallToolResult:
            return await self.client.call_tool(
                server,
                tool,
                params.arguments or {},
                meta=forwarded_meta(ctx.meta),
                progress=progress,
                handlers=handlers,
                unroutable="share",
            )

        failure: Exception | None = None
        result: Any = None
        if self.asking.parks(ctx):
            try:
                result = await self.asking.parked(
                    ctx, server, "tools/call", params.name, params, call, progress=wants_progress
                )
            except Exception as error:
                failure = error
        else:
            async with trio.open_nursery() as nursery:
                # The nursery only hosts the progress relay; errors are kept out of it so
                # they reach the SDK as themselves, not wrapped in an exception group.
                progress = self._progress_relay(ctx, nursery) if wants_progress else None
                try:
                    with (
                        self.asking.serving(ctx, server) as handlers,
                        self.notices.request_logs(ctx, server, nursery),
                    ):
                        result = await call(handlers, progress)
                except Exception as error:
                    failure = error
                finally:
                    if progress is not None:
                        progress.close()
        if failure is None:
            return result if isinstance(result, types.InputRequiredResult) else own_hop(result)
        if isinstance(
            failure, ServerUnavailableError | RequestTimeoutError | RequestInterruptedError
        ):
            # The model can act on these (retry later, use another tool): a tool error result.
            return types.CallToolResult(
                content=[types.TextContent(text=str(failure))], is_error=True
            )
        if isinstance(failure, MCPVisorError):
            raise _protocol_error(failure) from failure
        raise failure

    async def _asked(
        self,
        ctx: ServerRequestContext[Any],
        server: str,
        method: str,
        name: str,
        params: types.InputResponseRequestParams,
        call: Any,
    ) -> Any:
        """A prompt or resource request, with the server's questions during it relayed."""
        try:
            if self.asking.parks(ctx):
                result = await self.asking.parked(ctx, server, method, name, params, call)
            else:
                with self.asking.serving(ctx, server) as handlers:
                    result = await call(handlers, None)
        except MCPVisorError as error:
            raise _protocol_error(error) from error
        return result if isinstance(result, types.InputRequiredResult) else own_hop(result)

    async def _get_prompt(
        self, ctx: ServerRequestContext[Any], params: types.GetPromptRequestParams
    ) -> types.GetPromptResult | types.InputRequiredResult:
        if params.request_state is not None and self.asking.parks(ctx):
            server, prompt = "", params.name
        else:
            server, prompt = self._resolve("prompts", params.name)

        async def call(handlers: ClientHandlers, progress: Any) -> types.GetPromptResult:
            return await self.client.get_prompt(
                server, prompt, params.arguments, handlers=handlers, unroutable="share"
            )

        result: Any = await self._asked(ctx, server, "prompts/get", params.name, params, call)
        return result  # type: ignore[no-any-return]

    async def _read_resource(
        self, ctx: ServerRequestContext[Any], params: types.ReadResourceRequestParams
    ) -> types.ReadResourceResult | types.InputRequiredResult:
        uri = str(params.uri)
        found = (
            ""
            if params.request_state is not None
            else resource_server(self.view, uri, self._servers)
        )
        if found is None:
            raise MCPError(types.INVALID_PARAMS, f"Unknown resource: {uri}")
        server = found

        async def call(handlers: ClientHandlers, progress: Any) -> types.ReadResourceResult:
            return await self.client.read_resource(
                server, uri, handlers=handlers, unroutable="share"
            )

        result: Any = await self._asked(ctx, server, "resources/read", uri, params, call)
        return result  # type: ignore[no-any-return]

    async def _complete(
        self, ctx: ServerRequestContext[Any], params: types.CompleteRequestParams
    ) -> types.CompleteResult:
        ref = params.ref
        if isinstance(ref, types.PromptReference):
            server, name = self._resolve("prompts", ref.name)
            ref = ref.model_copy(update={"name": name})
        else:
            found = template_server(self.view, ref.uri)
            if found is None:
                found = resource_server(self.view, ref.uri, self._servers)
            if found is None:
                raise MCPError(types.INVALID_PARAMS, f"Unknown resource template: {ref.uri}")
            server = found
        args: dict[str, Any] = {
            "ref": ref,
            "argument": {"name": params.argument.name, "value": params.argument.value},
        }
        if params.context is not None and params.context.arguments:
            args["context_arguments"] = dict(params.context.arguments)
        try:
            result: types.CompleteResult = await self.client.request(server, "complete", args)
        except MCPVisorError as error:
            raise _protocol_error(error) from error
        return own_hop(result)

    def _progress_relay(self, ctx: ServerRequestContext[Any], nursery: trio.Nursery) -> _Relay:
        relay = _Relay()
        nursery.start_soon(relay.forward, ctx)
        return relay

    async def _set_logging_level(
        self, ctx: ServerRequestContext[Any], params: types.SetLevelRequestParams
    ) -> types.EmptyResult:
        """Remember the connection's level and pass it to every serving server that logs, now
        and after its restarts (the last level any client set wins); one that fails is
        skipped."""
        self.notices.set_level(ctx.session, params.level)
        for server, catalog in source.catalogs(self.client):
            caps = catalog.capabilities
            if caps is None or caps.logging is None:
                continue
            try:
                await self.client.request(server, "set_logging_level", {"level": params.level})
                await self.client.set_logging_level(server, params.level)
            except Exception as error:
                log.info("gateway.set_level_failed", server=server, error=str(error))
        return types.EmptyResult()

    # ---- telling clients ------------------------------------------------------------------

    async def _on_initialized(
        self, ctx: ServerRequestContext[Any], params: types.NotificationParams
    ) -> None:
        """A handshake-era connection is ready: remember it to tell it of list changes."""
        key = id(ctx.session)
        self._sessions[key] = ctx.session
        # The connection's teardown forgets it; ServerSession has no public handle on it.
        connection = getattr(ctx.session, "_connection", None)
        stack = getattr(connection, "exit_stack", None)
        if stack is not None:
            stack.callback(self._sessions.pop, key, None)

    async def announce(self, parts: frozenset[CatalogPart]) -> None:
        """Tell every client that the listings ``parts`` changed.

        Handshake-era connections get ``notifications/*/list_changed`` on their standalone
        channel (over HTTP, the client's GET stream: what is sent before the client has
        opened it is lost, as with any SDK server); 2026-era listeners get an event. A
        connection that fails or takes longer than a few seconds is forgotten.
        """
        methods = sorted({_LEGACY_NOTICES[p] for p in parts})
        async with trio.open_nursery() as nursery:
            # Concurrently, so one slow connection delays no other.
            for key, session in list(self._sessions.items()):
                nursery.start_soon(self._tell, key, session, methods)
        for event in {_MODERN_EVENTS[p] for p in parts}:
            await self._bus.publish(event)

    async def _tell(self, key: int, session: ServerSession, methods: list[str]) -> None:
        try:
            with trio.fail_after(_NOTIFY_TIMEOUT):
                for method in methods:
                    await getattr(session, method)()
        except Exception:
            # A connection that is gone or stuck is forgotten; the others still hear.
            log.debug("gateway.connection_dropped", exc_info=True)
            self._sessions.pop(key, None)

    def close_listeners(self) -> None:
        """End every 2026-era listen stream gracefully (at shutdown)."""
        self._listen.close()

    def _instructions(self) -> str | None:
        if len(self._servers) == 1:
            return None
        return "Tools of the servers " + ", ".join(self._servers) + ", named server__tool."


@asynccontextmanager
async def open_gateway(
    spec: SupervisorSpec,
    options: GatewayOptions | None = None,
    *,
    required: Collection[str] | None = None,
    hooks: Hooks | Iterable[Hooks] | None = None,
) -> AsyncIterator[Gateway]:
    """Supervise ``spec`` and serve it as a running :class:`Gateway` for the block.

    The supervisor's handlers are a :class:`~mcpvisor.gateway.relay.Relay` under the spec's
    own, so downstream servers may ask the gateway's clients (sampling, elicitation, roots)
    and their log records reach them. Serve :attr:`Gateway.server` over a transport inside
    the block; leaving it ends listen streams and stops every server.
    """
    relay = Relay()
    async with (
        open_supervisor(relay.install(spec), hooks=hooks) as client,
        trio.open_nursery() as nursery,
    ):
        gateway = Gateway(client, options, required=required, relay=relay)
        await nursery.start(gateway.run)
        try:
            yield gateway
        finally:
            gateway.close_listeners()
            nursery.cancel_scope.cancel()


def _protocol_error(error: MCPVisorError) -> MCPError:
    """A mcpvisor error as the JSON-RPC error the gateway's client receives."""
    code = (
        types.INVALID_PARAMS
        if isinstance(error, ValueError | LookupError)
        else types.INTERNAL_ERROR
    )
    return MCPError(code, str(error))
