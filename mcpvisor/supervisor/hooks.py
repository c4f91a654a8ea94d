"""Host hooks: one object whose methods the runtime calls at well-defined points.

Modelled on trio's ``Instrument``: subclass :class:`Hooks` and override only what you need;
methods left alone cost nothing, because the runtime calls only the ones a subclass overrode.
Metrics, tracing and alerting plug in here, never into the pure lifecycle core.

Every hook is synchronous and must not block. A hook that raises is logged (``hook.failed``)
and otherwise ignored: a broken metrics exporter never fails a request or a restart.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Literal, TypeAlias

import attrs

from mcpvisor.specs._logging import library_logger
from mcpvisor.supervisor.lifecycle import LifecycleEvent
from mcpvisor.workers.catalog import Catalog, CatalogPart

_log = library_logger()

RequestOutcome: TypeAlias = Literal[
    "ok", "error", "timeout", "interrupted", "unavailable", "cancelled", "usage"
]
"""How a handle request ended:

- ``ok``: a result came back (a ``CallToolResult`` with ``is_error`` set is still ``ok``);
- ``error``: the server answered with a JSON-RPC error (the SDK's ``MCPError``);
- ``timeout``: its deadline passed (:class:`~mcpvisor.RequestTimeoutError`);
- ``interrupted``: its server died with it in flight and it was not retried;
- ``unavailable``: the server was DROPPED, STOPPED, removed or unknown;
- ``cancelled``: the caller's own cancel scope ended it;
- ``usage``: the caller's mistake (:class:`~mcpvisor.UsageError`), found before sending.
"""


@attrs.define(eq=False)
class RequestCall:
    """One handle request as the hooks see it, from the caller's first line to its answer.

    The same object is passed to :meth:`Hooks.request_started`, every
    :meth:`Hooks.request_attempt` and :meth:`Hooks.request_finished`, all in the caller's own
    task (so a hook may set context variables, such as the current OpenTelemetry span, that the
    worker then serves the request under). ``started``, ``waited`` and ``duration`` are on
    trio's clock, in seconds. ``scratch`` belongs to the hooks, for their own bookkeeping.
    """

    server: str
    op: str
    """The operation's name, as in :meth:`SupervisorClient.request`: ``"call_tool"``."""
    method: str
    """The MCP method it sends: ``"tools/call"``."""
    target: str | None
    """The tool, prompt or resource it names, if any."""
    transport: str
    started: float
    attempt: int = 0
    """How many times it has been sent to a session; 2 means it was retried after a crash. A
    hand-off the worker refused unsent (its session was already ending) is taken back."""
    waited: float = 0.0
    """Time spent waiting for a STARTING or FAILED server to become ACTIVE."""
    protocol_version: str | None = None
    tool_error: bool = False
    """The tool answered with ``is_error`` set: a result, so ``outcome`` is ``"ok"``, which
    OpenTelemetry reports as ``error.type`` ``tool_error``."""
    outcome: RequestOutcome | None = None
    error: BaseException | None = None
    duration: float | None = None
    scratch: dict[str, object] = attrs.Factory(dict)


class Hooks:
    """Callbacks from the runtime; every method is optional and does nothing by default.

    - :meth:`request_started`, :meth:`request_attempt`, :meth:`request_finished`: a handle
      request's life, in the caller's task.
    - :meth:`state_changed`: every :class:`LifecycleEvent` (state changes, escalations,
      catalog changes), in the order subscribers see them, before they see them.
    - :meth:`catalog_changed`: a session's catalog was replaced (at ready, and after every
      ``list_changed`` refetch, even one that found no difference).
    - :meth:`events_lost`: a subscriber fell behind and ``count`` events were discarded.
    """

    def request_started(self, call: RequestCall) -> None:
        """A request began; ``call.attempt`` is 0 and nothing has been sent."""

    def request_attempt(self, call: RequestCall) -> None:
        """The request is being handed to an ACTIVE worker; ``call.attempt`` counts from 1.

        A worker whose session is already ending refuses the hand-off unsent, and the next
        hand-off then comes with the same ``attempt``: count retries at
        :meth:`request_finished` (``call.attempt > 1``), where each request is seen once."""

    def request_finished(self, call: RequestCall) -> None:
        """The request ended: ``outcome``, ``error`` and ``duration`` are set."""

    def state_changed(self, event: LifecycleEvent) -> None:
        """A lifecycle event is being published."""

    def catalog_changed(self, server: str, catalog: Catalog, parts: frozenset[CatalogPart]) -> None:
        """``server``'s catalog is now ``catalog``; ``parts`` were refetched (all, at ready)."""

    def events_lost(self, count: int) -> None:
        """A subscriber's buffer overflowed and ``count`` events were discarded."""


_HOOK_NAMES = (
    "request_started",
    "request_attempt",
    "request_finished",
    "state_changed",
    "catalog_changed",
    "events_lost",
)


class HookSet:
    """The hooks a supervisor was given, with each method resolved to the overriding ones.

    ``bool(hook_set.request_started)`` is false when no hook overrides it, so the request path
    pays one attribute test for hooks nobody installed.
    """

    def __init__(self, hooks: Hooks | Iterable[Hooks] | None = None) -> None:
        if hooks is None:
            listed: tuple[Hooks, ...] = ()
        elif isinstance(hooks, Hooks):
            listed = (hooks,)
        else:
            listed = tuple(hooks)
        for hook in listed:
            if not isinstance(hook, Hooks):
                raise TypeError(f"hooks must be Hooks instances, not {type(hook).__name__}")
        self.hooks = listed
        for name in _HOOK_NAMES:
            base = getattr(Hooks, name)
            bound = tuple(
                getattr(hook, name) for hook in listed if getattr(type(hook), name) is not base
            )
            setattr(self, name, _Dispatch(name, bound))

    request_started: _Dispatch
    request_attempt: _Dispatch
    request_finished: _Dispatch
    state_changed: _Dispatch
    catalog_changed: _Dispatch
    events_lost: _Dispatch


class _Dispatch:
    """Calls every overriding hook method in order; a raising one is logged and skipped."""

    __slots__ = ("_methods", "_name")

    def __init__(self, name: str, methods: tuple[Callable[..., None], ...]) -> None:
        self._name = name
        self._methods = methods

    def __bool__(self) -> bool:
        return bool(self._methods)

    def __call__(self, *args: object) -> None:
        for method in self._methods:
            try:
                method(*args)
            except Exception:
                _log.exception("hook.failed", hook=self._name)
