"""What a worker tells its owner: ready (with the catalog), list changes, loss, and its exit."""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal, TypeAlias

import attrs
from mcp_types.version import MODERN_PROTOCOL_VERSIONS

from mcpvisor.workers.catalog import Catalog, CatalogPart

ExitKind: TypeAlias = Literal["normal", "abnormal", "stopped"]
LossKind: TypeAlias = Literal["normal", "abnormal"]


@attrs.frozen
class Ready:
    """What a started worker reports through ``nursery.start``: the server as first seen.

    ``catalog`` holds complete listings (fetched past every page, within the listing bounds)
    and what the server said of itself. ``pid`` is the stdio child's pid, which is also its
    process group id; None for other transports.
    """

    catalog: Catalog
    pid: int | None = None

    @property
    def protocol_version(self) -> str:
        """The protocol version the session negotiated."""
        return self.catalog.protocol_version or ""

    @property
    def modern(self) -> bool:
        """Whether the session speaks the 2026-07-28 era (no ``ping``, ``listen`` instead)."""
        return self.protocol_version in MODERN_PROTOCOL_VERSIONS


@attrs.frozen
class WorkerExit:
    """How a worker's session ended, once it had been ready.

    - ``normal``: the server ended cleanly (a stdio process that exited with code 0).
    - ``abnormal``: a crash, a signal, a lost connection, an expired HTTP session, too many
      missed health probes, a protocol violation.
    - ``stopped``: the owner closed the request channel.

    ``cause`` is safe to log. ``returncode`` is the stdio exit status when the process exited
    on its own; negative for a signal, as in :mod:`subprocess`.
    """

    kind: ExitKind
    cause: str
    returncode: int | None = None


@attrs.frozen
class WorkerHooks:
    """Callbacks a worker makes while serving. Each is optional, synchronous and must not block.

    - ``on_catalog(catalog, parts)``: after every ``list_changed`` refetch a server announced
      (a notification in the handshake era, a ``listen`` event in the 2026-07-28 era), with
      the new catalog and the parts that were refetched, even when nothing differs, so a relay
      can pass it on. (The check a ``listen`` subscription makes of its own accord reports
      only a difference.)
    - ``on_lost(cause, kind, gone)``: as soon as the worker knows the session is gone, before
      teardown starts, so the owner can act at once: synchronously when the HTTP session
      expired or probes failed; when the link was lost, once the calls in flight have taken
      the answers the transport had already read (a scheduler pass or two), so an owner that
      fails outstanding requests then cannot beat an answer. Queued envelopes have been failed
      as unsent by then. ``gone`` says whether the server is gone (a process killed outright,
      its process group empty; a remote or in-process server): only then may a
      new session start before this one's teardown ends without meeting the old one's port,
      lock or files. The :class:`WorkerExit` returned later carries the same kind and cause.
      Not called when the owner stopped the worker.

    A hook that raises is logged and otherwise ignored.
    """

    on_catalog: Callable[[Catalog, frozenset[CatalogPart]], None] | None = None
    on_lost: Callable[[str, LossKind, bool], None] | None = None
