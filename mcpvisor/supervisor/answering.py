"""The runtime's share of server-to-client features: one ServerSide per server, kept across
restarts, the feed of resource updates, and requests that carry handlers of their own.

The supervisor keeps an :class:`Answering`; workers get their server's
:class:`~mcpvisor.workers.callbacks.ServerSide` from it, and the client handle's
``subscribe_resource``, ``set_roots``, ``resource_updates`` and ``call_tool(handlers=...)``
forward here.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, Final, Literal, TypeAlias, TypeVar

import attrs
import trio

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
    from mcpvisor.supervisor.client import IsolatedSession, SupervisorClient
    from mcpvisor.supervisor.runtime import Supervisor


def effective_handlers(spec: ServerSpec, supervisor: SupervisorSpec) -> ClientHandlers:
    """``spec``'s handlers over the supervisor's: what its sessions answer with."""
    base = getattr(supervisor, "handlers", None) or ClientHandlers()
    own = getattr(spec, "handlers", None)
    return base.over(None) if own is None else own.over(base)


def handlers_differ(a: ClientHandlers, b: ClientHandlers) -> bool:
    """Whether two handlers answer differently: a handler is compared by identity."""
    return not all(
        _same(getattr(a, f.name), getattr(b, f.name)) for f in attrs.fields(ClientHandlers)
    )


def _same(a: object, b: object) -> bool:
    return a is b or (not callable(a) and not callable(b) and a == b)


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

    def respec(self, spec: SupervisorSpec, changed: list[str]) -> None:
        """Adopt a reconfigured ``spec``: each ``changed`` server answers with its new
        handlers from its next question (its next session, where what they advertise
        changed)."""
        self._spec = spec
        for name in changed:
            side = self._sides.get(name)
            if side is not None:
                handlers = effective_handlers(spec[name], spec)
                if handlers_differ(side.handlers, handlers):
                    side.set_handlers(handlers)

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

    async def settle(self, servers: list[str]) -> None:
        """Wait until the live sessions of ``servers`` have applied the host's changes so far,
        each for at most its request timeout; a session that cannot is left to apply them on
        its own (it logs why), so this never fails."""

        async def one(side: ServerSide, timeout: float) -> None:
            with trio.move_on_after(timeout):
                await side.settle()

        waits = [
            (side, slot.spec.timeouts.request)
            for name in servers
            if (slot := self._sup._slots.get(name)) is not None
            and (side := self._sides.get(name)) is not None
        ]
        if len(waits) == 1:
            await one(*waits[0])
        elif waits:
            async with trio.open_nursery() as nursery:
                for side, timeout in waits:
                    nursery.start_soon(one, side, timeout)
        await trio.lowlevel.checkpoint()

    def unsubscribe_resource(self, server: str, uri: str) -> None:
        """See :meth:`SupervisorClient.unsubscribe_resource`."""
        self._configured(server).unsubscribe(_check_uri(uri, server))

    def set_roots(self, roots: Any, server: str | None) -> list[str]:
        """See :meth:`SupervisorClient.set_roots`; returns the servers it changed."""
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
        return names

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


Unroutable: TypeAlias = Literal["isolate", "share"]
"""What a request with ``handlers=`` does on a session that cannot tell which request asked
(2025-era stdio, SSE, in-process): ``"isolate"`` opens an isolated session built with the
handlers (a new process for stdio), so every question reaches them; ``"share"`` uses the
shared session, and the server's questions on it go to the session's own handlers. Where the
session can tell (streamable HTTP, every 2026-07-28 session), both share it and route."""

UNROUTABLE: Final[tuple[Unroutable, ...]] = ("isolate", "share")

_T = TypeVar("_T")


async def routed_request(
    client: SupervisorClient,
    server: str,
    handlers: ClientHandlers,
    unroutable: Unroutable,
    answering: Answering,
    shared: Callable[[], Awaitable[_T]],
    isolated: Callable[[IsolatedSession], Awaitable[_T]],
) -> _T:
    """Run one request with the server's questions during it going to ``handlers``.

    On a session that can tell which request asked (:func:`can_route`) and already advertises
    what ``handlers`` answer, ``shared()`` runs on the shared session; otherwise, per
    ``unroutable`` (see :data:`Unroutable`), ``isolated(session)`` on an isolated session built
    with ``handlers`` over the server's own, or ``shared()`` anyway. The handlers stay set
    for the shared request either way: a transport that cannot tell never sees them.
    """
    if not isinstance(handlers, ClientHandlers):
        raise UsageError("handlers", "must be a ClientHandlers", server=server)
    if unroutable not in UNROUTABLE:
        raise UsageError("unroutable", "must be 'isolate' or 'share'", server=server)
    if unroutable == "share" or answering.can_share(server, handlers):
        with routed(handlers):
            return await shared()
    async with client.isolated(server, handlers=handlers) as session:
        return await isolated(session)


__all__ = ["UNROUTABLE", "Answering", "ResourceUpdated", "Unroutable", "effective_handlers"]
