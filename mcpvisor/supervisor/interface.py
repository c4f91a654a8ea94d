"""The narrow seam between the public handle and the runtime that owns every server.

:class:`~mcpvisor.SupervisorClient` (and the asyncio facade, the gateway, adapters) talk to the
runtime only through :class:`RuntimeInterface`: a handful of methods, plus an immutable
:class:`Snapshot` the runtime publishes after each decision. Nothing on the far side of the
seam (slots, channels, the lifecycle core) is visible through it, in the way httpx's client
knows its transport only by ``handle_request``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING, Literal, Protocol, TypeAlias

import attrs

from mcpvisor.specs import ServerSpec, SupervisorSpec
from mcpvisor.specs.handlers import ClientHandlers
from mcpvisor.supervisor.events import Subscription
from mcpvisor.supervisor.reconfigure import ReconfigureReport
from mcpvisor.supervisor.status import ServerStatus, SupervisorStatus
from mcpvisor.workers.catalog import EMPTY_CATALOG, Catalog
from mcpvisor.workers.operations import Operation

if TYPE_CHECKING:
    from mcpvisor.supervisor.answering import Answering

Control: TypeAlias = Literal["restart", "stop", "drop", "revive"]
"""Host commands that act on one server (see :meth:`RuntimeInterface.control`)."""


@attrs.frozen
class Snapshot:
    """Everything a reader may know about the servers, as of the runtime's last decision.

    ``status`` is the health snapshot; ``catalogs`` holds each server's current catalog (the
    last one it reported, kept while it restarts; :data:`EMPTY_CATALOG` before its first
    ready). Servers appear in both in declared order, isolated sessions last. Nothing in a
    snapshot ever changes: the runtime publishes a new one instead.
    """

    status: SupervisorStatus
    catalogs: Mapping[str, Catalog]

    def catalog(self, server: str) -> Catalog:
        """``server``'s catalog, or :data:`EMPTY_CATALOG` if it is not supervised."""
        return self.catalogs.get(server, EMPTY_CATALOG)


class RuntimeInterface(Protocol):
    """What a handle may ask of the runtime; every method names its server.

    Errors are the public ones: :class:`~mcpvisor.UnknownServerError`,
    :class:`~mcpvisor.ServerUnavailableError`, :class:`~mcpvisor.UsageError` (with
    ``server`` set), :class:`~mcpvisor.RequestTimeoutError`,
    :class:`~mcpvisor.RequestInterruptedError`, and the server's own ``MCPError``.
    """

    @property
    def closing(self) -> bool:
        """Whether the supervisor is shutting down (every request fails from now on)."""
        ...

    def snapshot(self) -> Snapshot:
        """The latest published :class:`Snapshot`; cheap, and never stale by a decision."""
        ...

    async def dispatch(
        self,
        server: str,
        op: str,
        build: Callable[[], Operation],
        *,
        timeout: float | None = None,
    ) -> object:
        """Serve one request: ``build()`` makes the operation (its ``UsageError`` comes back
        with ``server`` set), then the request waits for a starting server, wakes an idle one,
        and is retried once after a crash if the operation is ``retry_safe``. ``op`` is its
        name for the hooks even when ``build`` fails. ``timeout`` (else the server's
        ``timeouts.request``) bounds all of it."""
        ...

    def control(self, command: Control, server: str) -> None:
        """Carry out a host command now; raises ``CommandRefusedError`` if it does not apply."""
        ...

    async def add(self, spec: ServerSpec) -> ServerStatus:
        """Supervise a new server; returns once its first start attempt has finished."""
        ...

    async def remove(self, server: str) -> None:
        """Stop ``server`` and forget it; returns once its worker has torn down (bounded)."""
        ...

    def isolated(
        self, server: str, handlers: ClientHandlers | None = None
    ) -> AbstractAsyncContextManager[str]:
        """A fresh, never-restarted session of ``server`` for the block; yields its label.
        ``handlers`` (over the server's own) answer what the server asks that session."""
        ...

    @property
    def answering(self) -> Answering:
        """Handlers, roots and resource subscriptions per server (answering servers)."""
        ...

    def subscribe(self, *, buffer: int = 1024) -> AbstractAsyncContextManager[Subscription]:
        """Receive every lifecycle event from now on while the block runs."""
        ...

    async def reconfigure(self, spec: SupervisorSpec) -> ReconfigureReport:
        """Adopt ``spec`` in one step (see :meth:`~mcpvisor.SupervisorClient.reconfigure`);
        ``ConfigError``, changing nothing, if it cannot. Returns once every added or restarted
        server has finished its first start attempt."""
        ...

    def reject_reload(self, error: BaseException) -> None:
        """Publish a rejected ``"reload"`` event for a config that did not even load."""
        ...

    async def close(self) -> None:
        """Ask the supervisor to shut down; returns at once."""
        ...
