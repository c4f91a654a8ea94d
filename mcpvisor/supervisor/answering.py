"""The runtime's share of server-to-client features: one ServerSide per server, kept across
restarts, the feed of resource updates, and requests that carry handlers of their own.

The supervisor keeps an :class:`Answering`; workers get their server's
:class:`~mcpvisor.workers.callbacks.ServerSide` from it, and the client handle's
``subscribe_resource``, ``set_roots``, ``resource_updates`` and ``call_tool(handlers=...)``
forward here.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import attrs
import mcp_types as types

from mcpvisor.specs import ServerSpec, SupervisorSpec, UsageError
from mcpvisor.specs.handlers import LOG_LEVELS, ClientHandlers, LogLevel
from mcpvisor.workers.callbacks import (
    ResourceUpdated,
    ServerSide,
    UpdateFeed,
    can_route,
    routed,
)

if TYPE_CHECKING:
    from mcpvisor.supervisor.client import SupervisorClient
    from mcpvisor.supervisor.runtime import Supervisor


def effective_handlers(spec: ServerSpec, supervisor: SupervisorSpec) -> ClientHandlers:
    """``spec``'s handlers over the supervisor's: what its sessions answer with."""
    base = getattr(supervisor, "handlers", None) or ClientHandlers()
    own = getattr(spec, "handlers", None)
    return base.over(None) if own is None else own.over(base)


class Answering:
    """Per-server :class:`ServerSide` objects and the resource-update subscribers."""

    def __init__(self, supervisor: Supervisor) -> None:
        self._sup = supervisor
        self._spec = supervisor.spec
        self._sides: dict[str, ServerSide] = {}
        self._feeds: set[UpdateFeed] = set()
        self._closed = False

    def side(self, name: str, spec: ServerSpec) -> ServerSide:
        """The state every session of ``name`` shares, created on first use."""
        side = self._sides.get(name)
        if side is None:
            handlers = effective_handlers(spec, self._spec)
            side = self._sides[name] = ServerSide(name, handlers, on_updated=self.publish)
        return side

    def isolate(
        self, label: str, server: str, spec: ServerSpec, handlers: ClientHandlers | None
    ) -> None:
        """An isolated session ``label`` of ``server``: its handlers, or ``handlers`` over them."""
        base = self.side(server, spec).handlers
        side = ServerSide(server, base if handlers is None else handlers.over(base))
        side.on_updated = self.publish
        side.routed = handlers
        self._sides[label] = side

    def forget(self, name: str) -> None:
        """Drop ``name``'s state (the server was removed)."""
        self._sides.pop(name, None)

    def publish(self, event: ResourceUpdated) -> None:
        """Hand ``event`` to every resource-update subscriber; never blocks."""
        for feed in self._feeds:
            feed.push(event)

    @asynccontextmanager
    async def feed(self, buffer: int) -> AsyncIterator[UpdateFeed]:
        """A subscriber's bounded feed of :class:`ResourceUpdated`, for the block."""
        if not isinstance(buffer, int) or isinstance(buffer, bool) or buffer < 1:
            raise UsageError("buffer", "must be an integer >= 1")
        feed = UpdateFeed(buffer)
        if self._closed:
            feed.close()
        self._feeds.add(feed)
        try:
            yield feed
        finally:
            self._feeds.discard(feed)
            feed.close()

    def close(self) -> None:
        """End every feed (the supervisor is shutting down)."""
        self._closed = True
        for feed in self._feeds:
            feed.close()

    # -- what the handle forwards ------------------------------------------------------------

    def _configured(self, server: str) -> ServerSide:
        from mcpvisor.supervisor.errors import UnknownServerError

        slot = self._sup._slots.get(server)
        if slot is None or slot.isolated_of is not None:
            raise UnknownServerError(server, self._sup._order)
        return self.side(server, slot.spec)

    def subscribe_resource(self, server: str, uri: str) -> None:
        """See :meth:`SupervisorClient.subscribe_resource`."""
        side = self._configured(server)
        _check_uri(uri, server)
        ready = self._sup._slots[server].ready
        if ready is not None and not ready.modern:
            caps = ready.catalog.capabilities
            resources = caps.resources if caps is not None else None
            if not (resources and resources.subscribe):
                raise UsageError(
                    "uri", "this server does not offer resource subscriptions", server=server
                )
        side.subscribe(uri)

    def unsubscribe_resource(self, server: str, uri: str) -> None:
        """See :meth:`SupervisorClient.unsubscribe_resource`."""
        self._configured(server).unsubscribe(_check_uri(uri, server))

    def set_roots(self, roots: Any, server: str | None) -> None:
        """See :meth:`SupervisorClient.set_roots`."""
        sup = self._sup
        if server is not None:
            names = [server]
        else:
            names = [n for n in sup._order if sup._slots[n].isolated_of is None]
        for side in [self._configured(name) for name in names]:
            try:
                side.set_roots(roots)
            except (TypeError, ValueError):
                message = "must be a list of file:// URIs or Root objects, or a roots handler"
                raise UsageError("roots", message, server=side.server) from None

    def set_log_level(self, server: str, level: LogLevel) -> None:
        """See :meth:`SupervisorClient.set_logging_level`."""
        side = self._configured(server)
        if level not in LOG_LEVELS:
            raise UsageError("level", "must be one of " + ", ".join(LOG_LEVELS), server=server)
        side.set_handlers(attrs.evolve(side.handlers, log_level=level))

    def can_share(self, server: str, handlers: ClientHandlers) -> bool:
        """Whether a call routed to ``handlers`` may use ``server``'s shared session."""
        slot = self._sup._slots.get(server)
        if slot is None or slot.ready is None:
            return False
        side = self.side(server, slot.spec)
        return can_route(slot.ready, slot.transport) and handlers.advertised <= (
            side.handlers.advertised
        )


def _check_uri(uri: object, server: str) -> str:
    if not isinstance(uri, str) or not uri:
        raise UsageError("uri", "must be a non-empty string", server=server)
    return uri


async def call_tool_routed(
    client: SupervisorClient,
    server: str,
    tool: str,
    arguments: Mapping[str, Any] | None,
    handlers: ClientHandlers,
    answering: Answering,
    **kwargs: Any,
) -> types.CallToolResult:
    """Call ``tool`` with the server's questions during the call going to ``handlers``.

    On a session that can tell which request asked (:func:`can_route`) and already advertises
    what ``handlers`` answer, the call goes through the shared session; otherwise through an
    isolated session built with ``handlers`` over the server's own.
    """
    if not isinstance(handlers, ClientHandlers):
        raise UsageError("handlers", "must be a ClientHandlers", server=server)
    if answering.can_share(server, handlers):
        with routed(handlers):
            return await client.call_tool(server, tool, arguments, **kwargs)
    async with client.isolated(server, handlers=handlers) as session:
        return await session.call_tool(tool, arguments, **kwargs)


__all__ = ["Answering", "ResourceUpdated", "effective_handlers"]
