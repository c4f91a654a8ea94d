"""Keeping a session's catalog current as the server announces list changes, in both eras.

Handshake-era servers send ``notifications/*/list_changed``; 2026-07-28 sessions learn of
changes through ``subscriptions/listen``. Either way the kind is marked and one task refetches
the marked kinds, so a burst of notifications costs one listing, not one per notification.
Every refetch a server announced ends with a new catalog and the ``on_catalog`` hook, even when
nothing changed; the refetch a ``listen`` subscription makes on its own, to catch changes made
before it was acknowledged, calls the hook only if something did change (and keeps the catalog
it had when nothing did, so no second copy of it is held).

An in-process server publishes its changes on a bus in this very process, which is all a
``listen`` stream to it relays: the worker subscribes to that bus directly (:func:`served_bus`)
instead of holding a stream open, which would cost a request held open on each end, two tasks
and about 36 KiB per session. The refetch task runs only while there is something to refetch.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable
from typing import Any

import mcp_types as types
import trio
from mcp import Client
from mcp.client.subscriptions import (
    ListenNotSupportedError,
    PromptsListChanged,
    ResourcesListChanged,
    SubscriptionLost,
    ToolsListChanged,
)
from mcp.server.subscriptions import ListenHandler, SubscriptionBus
from mcp.shared.exceptions import MCPError
from mcp.shared.subscriptions import ServerEvent
from mcp_types import CONNECTION_CLOSED, METHOD_NOT_FOUND

from mcpvisor.workers.catalog import Catalog, CatalogPart
from mcpvisor.workers.listing import refetch

_LISTEN_RETRY_MAX = 30.0

_NONE: frozenset[str] = frozenset()
"""Shared: each ``frozenset()`` call allocates an empty set of its own (216 bytes)."""

_NOTIFICATIONS: dict[type[Any], str] = {
    types.ToolListChangedNotification: "tools",
    types.ResourceListChangedNotification: "resources",
    types.PromptListChangedNotification: "prompts",
}
_EVENTS: dict[type[Any], str] = {
    ToolsListChanged: "tools",
    ResourcesListChanged: "resources",
    PromptsListChanged: "prompts",
}
_EVENT_OF: dict[str, ServerEvent] = {
    "tools": ToolsListChanged(),
    "resources": ResourcesListChanged(),
    "prompts": PromptsListChanged(),
}


def served_bus(server: object) -> SubscriptionBus | None:
    """The bus an in-process server's ``subscriptions/listen`` handler relays, or None.

    None unless the server serves ``listen`` with the SDK's own :class:`ListenHandler` (as
    every ``MCPServer`` does unless built with ``subscriptions=False``): a server without one
    announces nothing, and one with a handler of its own is asked the real way. The bus is a
    private attribute of the SDK's; if it moves, sessions fall back to a ``listen`` stream.
    """
    low = getattr(server, "_lowlevel_server", server)  # an MCPServer wraps a low-level Server
    get = getattr(low, "get_request_handler", None)
    entry = get("subscriptions/listen") if callable(get) else None
    handler = getattr(entry, "handler", None)
    if not isinstance(handler, ListenHandler):
        return None
    bus = getattr(handler, "_bus", None)
    return bus if callable(getattr(bus, "subscribe", None)) else None


def listenable(caps: types.ServerCapabilities | None) -> tuple[str, ...]:
    """The kinds whose changes a server with ``caps`` says it announces."""
    if caps is None:
        return ()
    wanted = (
        ("tools", caps.tools),
        ("resources", caps.resources),
        ("prompts", caps.prompts),
    )
    return tuple(kind for kind, cap in wanted if cap is not None and cap.list_changed)


class CatalogKeeper:
    """Holds a session's current :class:`Catalog` and refetches the parts a server changes."""

    __slots__ = (
        "_client",
        "_dirty",
        "_evict",
        "_listening",
        "_log",
        "_nursery",
        "_on_catalog",
        "_redact",
        "_refreshing",
        "_time_limit",
        "catalog",
        "followed",
    )

    def __init__(
        self,
        catalog: Catalog,
        on_catalog: Callable[[Catalog, frozenset[CatalogPart]], None] | None,
        *,
        time_limit: float,
        log: Any,
        redact: Callable[[str], str],
    ) -> None:
        self.catalog = catalog
        self._on_catalog = on_catalog
        self._time_limit = time_limit
        self._log = log
        self._redact = redact
        self._dirty: dict[str, bool] = {}
        """Kinds to refetch, each with whether the server announced a change to it."""
        self._listening: frozenset[str] = _NONE
        """Kinds an open ``listen`` subscription reports."""
        self._nursery: trio.Nursery | None = None
        self._client: Client | None = None
        self._refreshing = False
        self._evict: Callable[[ServerEvent], Awaitable[None]] | None = None
        self.followed: tuple[str, ...] = ()
        """Kinds the server's bus reports (:meth:`on_event`); a ``listen`` stream is not needed."""

    def mark(self, *kinds: str, announced: bool = True) -> None:
        """Ask for ``kinds`` (``tools``, ``resources``, ``prompts``) to be refetched.

        ``announced=False`` (a check of our own): report the refetch only if it differs.
        """
        for kind in kinds:
            self._dirty[kind] = self._dirty.get(kind, False) or announced
        if kinds:
            self._spawn()

    @property
    def marked(self) -> frozenset[str]:
        """The kinds marked and not refetched yet."""
        return frozenset(self._dirty)

    def notice(self, message: object) -> bool:
        """Mark the kind a ``list_changed`` notification names; False for other messages.

        While a ``listen`` subscription is open the SDK delivers each change both ways; the
        subscription's event is the one counted, so one change makes one refetch.
        """
        kind = _NOTIFICATIONS.get(type(message))
        if kind is None:
            return False
        if kind not in self._listening:
            self.mark(kind)
        return True

    def on_event(self, event: ServerEvent) -> None:
        """A change the server published on its bus (see :func:`served_bus`): as a ``listen``
        event, it marks the kind it names."""
        kind = _EVENTS.get(type(event))
        if kind is not None and kind in self.followed:
            self.mark(kind)

    def start(self, nursery: trio.Nursery, client: Client) -> None:
        """Refetch in ``nursery`` from now on, starting with what is already marked."""
        self._nursery, self._client = nursery, client
        if self.followed and getattr(client, "_response_cache", None) is not None:
            # What ``Client.listen`` does before it hands an event on: a host's cached
            # listing of the kind goes stale now, and a fetch in flight must not write it back.
            self._evict = getattr(client, "_evict_for_listen_event", None)
        self._spawn()

    def _spawn(self) -> None:
        nursery = self._nursery
        if self._refreshing or not self._dirty or nursery is None:
            return
        if nursery.cancel_scope.cancel_called:  # serving is over
            return
        try:
            nursery.start_soon(self._refresher)
        except RuntimeError:  # the session is over: nothing to refetch for
            return
        self._refreshing = True

    async def _refresher(self) -> None:
        """Refetch marked kinds, one at a time, until none is left."""
        client = self._client
        assert client is not None
        try:
            while self._dirty:
                kinds, self._dirty = self._dirty, {}
                for kind in ("tools", "resources", "prompts"):
                    if kind in kinds:
                        if self._evict is not None and kinds[kind]:
                            await self._evict(_EVENT_OF[kind])
                        await self._refresh(client, kind, announced=kinds[kind])
        finally:
            self._refreshing = False

    async def _refresh(self, client: Client, kind: str, *, announced: bool) -> None:
        try:
            catalog, parts = await refetch(
                client, self.catalog, kind, time_limit=self._time_limit, log=self._log
            )
        except MCPError as error:
            self._log.warning(
                "server.list_failed", what=kind, error=self._redact(error.error.message)
            )
            return
        changed = catalog != self.catalog
        if changed or announced:
            self.catalog = catalog
        self._log.debug("server.list_refetched", what=kind, changed=changed)
        if self._on_catalog is not None and (announced or changed):
            try:
                self._on_catalog(catalog, parts)
            except Exception:
                self._log.exception("server.hook_failed", hook="on_catalog")

    async def listen(self, client: Client, ack_timeout: float) -> None:
        """2026-07-28 sessions: subscribe to list changes and mark what each event names."""
        kinds = listenable(self.catalog.capabilities)
        if not kinds:
            return
        delay = 1.0
        while True:
            # From the request on, changes are the subscription's to report: the SDK would
            # also deliver them as notifications, and one change would make two refetches.
            self._listening = frozenset(kinds)
            try:
                # Bounds the wait for the acknowledgment only; lifted once subscribed.
                with trio.CancelScope(deadline=trio.current_time() + ack_timeout) as ack_scope:
                    async with client.listen(
                        tools_list_changed="tools" in kinds,
                        resources_list_changed="resources" in kinds,
                        prompts_list_changed="prompts" in kinds,
                    ) as subscription:
                        ack_scope.deadline = math.inf
                        delay = 1.0
                        # Changes between the last listing and the acknowledgment would be lost.
                        self.mark(*kinds, announced=False)
                        async for event in subscription:
                            kind = _EVENTS.get(type(event))
                            if kind is not None:
                                self.mark(kind)
            except ListenNotSupportedError:
                return
            except MCPError as error:
                if error.code in (METHOD_NOT_FOUND, CONNECTION_CLOSED):
                    return
                self._log.debug("server.listen_failed", error=self._redact(error.error.message))
            except (SubscriptionLost, TimeoutError) as error:
                self._log.debug("server.listen_lost", error=self._redact(str(error)))
            finally:
                # Notifications count again; a check catches any ignored while subscribing,
                # unless this task is being cancelled: the session is ending, and a refetch
                # started now would only fail on the closing connection.
                self._listening = _NONE
                if trio.current_effective_deadline() != -math.inf:
                    self.mark(*kinds, announced=False)
            await trio.sleep(delay)
            delay = min(delay * 2, _LISTEN_RETRY_MAX)
