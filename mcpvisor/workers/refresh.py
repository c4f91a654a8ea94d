"""Keeping a session's catalog current as the server announces list changes, in both eras.

Handshake-era servers send ``notifications/*/list_changed``; 2026-07-28 sessions learn of
changes through ``subscriptions/listen``. Either way the kind is marked and one task refetches
the marked kinds, so a burst of notifications costs one listing, not one per notification.
Every refetch a server announced ends with a new catalog and the ``on_catalog`` hook, even when
nothing changed; the refetch a ``listen`` subscription makes on its own, to catch changes made
before it was acknowledged, calls the hook only if something did change.
"""

from __future__ import annotations

import math
from collections.abc import Callable
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
from mcp.shared.exceptions import MCPError
from mcp_types import CONNECTION_CLOSED, METHOD_NOT_FOUND

from mcpvisor.workers.catalog import Catalog, CatalogPart
from mcpvisor.workers.listing import refetch

_LISTEN_RETRY_MAX = 30.0

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


class CatalogKeeper:
    """Holds a session's current :class:`Catalog` and refetches the parts a server changes."""

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
        self._wake = trio.Event()
        self._listening: frozenset[str] = frozenset()
        """Kinds an open ``listen`` subscription reports."""

    def mark(self, *kinds: str, announced: bool = True) -> None:
        """Ask for ``kinds`` (``tools``, ``resources``, ``prompts``) to be refetched.

        ``announced=False`` (a check of our own): report the refetch only if it differs.
        """
        for kind in kinds:
            self._dirty[kind] = self._dirty.get(kind, False) or announced
        if kinds:
            self._wake.set()

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

    async def refresher(self, client: Client) -> None:
        """Refetch marked kinds, one at a time, forever."""
        while True:
            await self._wake.wait()
            self._wake = trio.Event()
            kinds, self._dirty = self._dirty, {}
            for kind in ("tools", "resources", "prompts"):
                if kind in kinds:
                    await self._refresh(client, kind, announced=kinds[kind])

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
        self.catalog = catalog
        self._log.debug("server.list_refetched", what=kind, changed=changed)
        if self._on_catalog is not None and (announced or changed):
            try:
                self._on_catalog(catalog, parts)
            except Exception:
                self._log.exception("server.hook_failed", hook="on_catalog")

    async def listen(self, client: Client, ack_timeout: float) -> None:
        """2026-07-28 sessions: subscribe to list changes and mark what each event names."""
        caps = self.catalog.capabilities
        assert caps is not None
        wanted = {
            "tools": bool(caps.tools and caps.tools.list_changed),
            "resources": bool(caps.resources and caps.resources.list_changed),
            "prompts": bool(caps.prompts and caps.prompts.list_changed),
        }
        kinds = [kind for kind, on in wanted.items() if on]
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
                        tools_list_changed=wanted["tools"],
                        resources_list_changed=wanted["resources"],
                        prompts_list_changed=wanted["prompts"],
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
                # Notifications count again; a check catches any ignored while subscribing.
                self._listening = frozenset()
                self.mark(*kinds, announced=False)
            await trio.sleep(delay)
            delay = min(delay * 2, _LISTEN_RETRY_MAX)
