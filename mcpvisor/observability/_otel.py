"""OpenTelemetry traces and metrics fed by the host-hooks seam, through ``opentelemetry-api`` only.

Without an SDK installed by the host the API hands out proxy tracers and meters that record
nothing; while that is so, the request hooks return at once. Nothing here ever configures a
provider.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from contextvars import Token
from typing import TYPE_CHECKING, Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Link, Span, SpanKind, StatusCode

from mcpvisor.observability._naming import (
    ABNORMAL_REASONS,
    OTHER,
    Vocabulary,
    configured_name,
    error_type,
    is_isolated,
)
from mcpvisor.supervisor.hooks import Hooks, RequestCall
from mcpvisor.supervisor.lifecycle import LifecycleEvent, ServerState
from mcpvisor.workers.catalog import Catalog, CatalogPart

if TYPE_CHECKING:
    from opentelemetry import metrics as otel_metrics

_SCOPE = "mcpvisor"
_SCRATCH = "mcpvisor.otel"

DURATION_BUCKETS = (0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)
"""The bucket boundaries the OTel MCP semantic conventions advise for durations, in seconds."""


def _version() -> str:
    from importlib.metadata import version

    return version("mcpvisor")


class OpenTelemetryHooks(Hooks):
    """Traces and metrics for a supervisor, in OpenTelemetry's MCP semantic conventions.

    Install with ``open_supervisor(spec, hooks=OpenTelemetryHooks())``, one instance per
    supervisor (it keeps each server's session span). It records nothing until the host
    installs an OpenTelemetry SDK (or passes ``tracer_provider`` / ``meter_provider``); the
    library never configures one. Until then a request costs it a few attribute look-ups, and
    once a global provider that records is installed, requests are recorded within a second.

    **Traces.** Each handle request is one span, ``mcpvisor {op} {server}``, from the
    caller's first line to its answer: it covers any wait for a restarting server and a retry
    after a crash. It is the current span while the request runs, so the SDK's own
    ``MCP send ...`` client span (the worker serves the request in the caller's context) is
    its child, and the W3C trace context the SDK puts in ``_meta`` carries the same trace to
    the server. (The SDK opens that span in its JSON-RPC dispatcher: stdio, HTTP and
    handshake-era in-process sessions; a 2026-07-28 in-process session has none.)
    Attributes: ``mcp.method.name``, ``gen_ai.tool.name``, ``mcp.protocol.version``,
    ``network.transport``, ``error.type``, ``mcpvisor.server``, ``mcpvisor.attempt``,
    ``mcpvisor.outcome``, ``mcpvisor.waited``. Each server session is a root span,
    ``mcpvisor session {server}``, from STARTING until it leaves ACTIVE (or fails to start),
    with every lifecycle transition and catalog change as a span event; it links to the span
    that was current when the session began, such as the request that woke a lazy server.

    **Metrics.** ``mcp.client.operation.duration`` and ``mcp.client.session.duration``
    (seconds, semantic-convention names), and ``mcpvisor.server.restarts`` and
    ``mcpvisor.server.drops`` by reason, ``mcpvisor.server.state`` (1 for the state each
    configured server is in), ``mcpvisor.server.start.duration`` by outcome (``ready``, or the
    reason of the transition that ended the start: ``start_failed``, ``intensity`` when that
    failure used up the restart budget, ``stopped``...), ``mcpvisor.request.wait.duration``
    (requests that waited for a starting or restarting server), ``mcpvisor.request.retries``,
    ``mcpvisor.request.interrupted`` (requests that failed because their server died) and
    ``mcpvisor.events.lost``.

    No attribute ever comes from a request's arguments. Metric attributes (and span names)
    never carry a caller's invention: a server never supervised and an operation that does
    not exist are ``_OTHER``. Metrics carry ``gen_ai.tool.name`` only with
    ``tool_names=True``, and then only for names the server's catalog lists (others are
    ``_OTHER``). Isolated sessions (``server~N``) are reported under their
    server's name.
    """

    def __init__(
        self,
        *,
        tracer_provider: trace.TracerProvider | None = None,
        meter_provider: otel_metrics.MeterProvider | None = None,
        tool_names: bool = False,
    ) -> None:
        # Imported here: the metrics API costs every ``import mcpvisor`` ~15 ms otherwise.
        from opentelemetry import metrics as otel_metrics

        version = _version()
        self._tracer = trace.get_tracer(_SCOPE, version, tracer_provider)
        meter = otel_metrics.get_meter(_SCOPE, version, meter_provider)
        self._tracing = _Recording(trace.get_tracer_provider, tracer_provider)
        self._metering = _Recording(otel_metrics.get_meter_provider, meter_provider)
        self._tool_names = tool_names
        self._names = Vocabulary()
        self._sessions: dict[str, Span] = {}
        self._starting_at: dict[str, float] = {}
        self._active_at: dict[str, float] = {}
        self._protocol: dict[str, str] = {}

        def histogram(name: str, description: str) -> otel_metrics.Histogram:
            return meter.create_histogram(
                name, "s", description, explicit_bucket_boundaries_advisory=DURATION_BUCKETS
            )

        self._operation_duration = histogram(
            "mcp.client.operation.duration",
            "Duration of a handle request, including waits for a restarting server and retries.",
        )
        self._session_duration = histogram(
            "mcp.client.session.duration", "How long a server session was ACTIVE."
        )
        self._start_duration = histogram(
            "mcpvisor.server.start.duration",
            "How long a server took to become ACTIVE or to fail starting, by outcome.",
        )
        self._wait_duration = histogram(
            "mcpvisor.request.wait.duration",
            "Time a request waited for a starting or restarting server before it was sent.",
        )
        self._restarts = meter.create_counter(
            "mcpvisor.server.restarts", "{restart}", "Automatic restarts decided, by reason."
        )
        self._drops = meter.create_counter(
            "mcpvisor.server.drops", "{drop}", "Times a server was given up on, by reason."
        )
        self._state = meter.create_up_down_counter(
            "mcpvisor.server.state",
            "{server}",
            "1 for the state each configured server is in, 0 for the others.",
        )
        self._retries = meter.create_counter(
            "mcpvisor.request.retries",
            "{request}",
            "Requests sent again after their server crashed with them in flight.",
        )
        self._interrupted = meter.create_counter(
            "mcpvisor.request.interrupted",
            "{request}",
            "Requests that failed because their server died while they were in flight.",
        )
        self._events_lost = meter.create_counter(
            "mcpvisor.events.lost", "{event}", "Lifecycle events a slow subscriber missed."
        )

    # ---- requests ---------------------------------------------------------------------

    def request_started(self, call: RequestCall) -> None:
        if not self._tracing():
            return
        # What the request names is set at the start, where a sampler can see it.
        attributes: dict[str, Any] = {
            "mcpvisor.server": configured_name(call.server),
            "network.transport": call.transport,
        }
        _name_attributes(call, attributes)
        if is_isolated(call.server):
            attributes["mcpvisor.session"] = call.server
        span = self._tracer.start_span(
            f"mcpvisor {self._names.op(call)} {self._names.server(call)}",
            kind=SpanKind.INTERNAL,
            attributes=attributes,
        )
        token = otel_context.attach(trace.set_span_in_context(span))
        call.scratch[_SCRATCH] = _Open(span, token)

    def request_attempt(self, call: RequestCall) -> None:
        entry = call.scratch.get(_SCRATCH)
        if not isinstance(entry, _Open):
            return
        # A hand-off refused unsent comes again with the same attempt: one retry, one event.
        if call.attempt > 1 and not entry.retried and entry.span.is_recording():
            entry.retried = True
            entry.span.add_event("mcpvisor.retry", {"mcpvisor.attempt": call.attempt})

    def request_finished(self, call: RequestCall) -> None:
        failure = error_type(call)
        outcome = call.outcome or "ok"
        entry = call.scratch.pop(_SCRATCH, None)
        if isinstance(entry, _Open):
            span = entry.span
            if span.is_recording():
                span.set_attributes(_span_attributes(call, outcome, failure))
                if failure is not None:
                    span.set_status(StatusCode.ERROR, _describe(call.error) or failure)
            otel_context.detach(entry.token)
            span.end()
        if not self._metering():
            return
        server = self._names.server(call)
        method = call.method or OTHER
        if call.attempt > 1:
            self._retries.add(1, {"mcpvisor.server": server, "mcp.method.name": method})
        attributes: dict[str, Any] = {
            "mcp.method.name": method,
            "mcpvisor.server": server,
            "network.transport": call.transport,
            "mcpvisor.outcome": outcome,
        }
        if call.protocol_version is not None:
            attributes["mcp.protocol.version"] = call.protocol_version
        if failure is not None:
            attributes["error.type"] = failure
        if self._tool_names and call.method == "tools/call":
            attributes["gen_ai.tool.name"] = self._names.tool(call)
        if call.duration is not None:
            self._operation_duration.record(call.duration, attributes)
        if call.waited > 0:
            self._wait_duration.record(
                call.waited, {"mcpvisor.server": server, "mcp.method.name": method}
            )
        if outcome == "interrupted":
            self._interrupted.add(
                1,
                {
                    "mcpvisor.server": server,
                    "mcp.method.name": method,
                    "mcpvisor.attempt": call.attempt,
                },
            )

    # ---- lifecycle --------------------------------------------------------------------

    def state_changed(self, event: LifecycleEvent) -> None:
        if event.kind != "state":
            span = self._sessions.get(event.server)
            if span is not None:
                span.add_event(f"mcpvisor.{event.kind}", _event_attributes(event))
            return
        self._names.saw(event)
        server = configured_name(event.server)
        old, new = event.old, event.new
        if not is_isolated(event.server):
            if old is not None:
                self._state.add(-1, {"mcpvisor.server": server, "mcpvisor.state": old.value})
            if new is not None:
                self._state.add(1, {"mcpvisor.server": server, "mcpvisor.state": new.value})
        if new is ServerState.FAILED:
            self._restarts.add(1, {"mcpvisor.server": server, "mcpvisor.reason": event.reason})
        elif new is ServerState.DROPPED:
            self._drops.add(1, {"mcpvisor.server": server, "mcpvisor.reason": event.reason})
        self._session_event(event, server)

    def _session_event(self, event: LifecycleEvent, server: str) -> None:
        old, new, name = event.old, event.new, event.server
        span = self._sessions.get(name)
        if span is not None:
            span.add_event(f"mcpvisor.state.{_value(new)}", _event_attributes(event))
        if old is ServerState.STARTING:
            started = self._starting_at.pop(name, None)
            if started is not None:
                outcome = "ready" if new is ServerState.ACTIVE else event.reason
                self._start_duration.record(
                    max(0.0, event.at - started),
                    {"mcpvisor.server": server, "mcpvisor.outcome": outcome},
                )
        if new is ServerState.ACTIVE:
            self._active_at[name] = event.at
        if old is ServerState.ACTIVE:
            self._end_active(event, server)
        leaving = old is ServerState.ACTIVE or (
            old is ServerState.STARTING and new is not ServerState.ACTIVE
        )
        if leaving:
            self._end_session(event)
        if new is ServerState.STARTING:
            self._starting_at[name] = event.at
            self._open_session(event, server)

    def _end_active(self, event: LifecycleEvent, server: str) -> None:
        since = self._active_at.pop(event.server, None)
        if since is None:
            return
        attributes: dict[str, Any] = {"mcpvisor.server": server, "mcpvisor.reason": event.reason}
        protocol = self._protocol.get(event.server)
        if protocol is not None:
            attributes["mcp.protocol.version"] = protocol
        if event.reason in ABNORMAL_REASONS:
            attributes["error.type"] = event.reason
        self._session_duration.record(max(0.0, event.at - since), attributes)

    def _end_session(self, event: LifecycleEvent) -> None:
        span = self._sessions.pop(event.server, None)
        self._protocol.pop(event.server, None)
        if span is None:
            return
        if event.reason in ABNORMAL_REASONS:
            span.set_attribute("error.type", event.reason)
            span.set_status(StatusCode.ERROR, event.cause or event.reason)
        span.end()

    def _open_session(self, event: LifecycleEvent, server: str) -> None:
        current = trace.get_current_span().get_span_context()
        links = [Link(current)] if current.is_valid else None
        span = self._tracer.start_span(
            f"mcpvisor session {server}",
            context=otel_context.Context(),
            kind=SpanKind.INTERNAL,
            attributes={"mcpvisor.server": server, "mcpvisor.session": event.server},
            links=links,
        )
        span.add_event("mcpvisor.state.starting", _event_attributes(event))
        self._sessions[event.server] = span

    def catalog_changed(self, server: str, catalog: Catalog, parts: frozenset[CatalogPart]) -> None:
        self._names.learn_tools(server, catalog)
        if catalog.protocol_version is not None:
            self._protocol[server] = catalog.protocol_version
        span = self._sessions.get(server)
        if span is not None and span.is_recording():
            if catalog.protocol_version is not None:
                span.set_attribute("mcp.protocol.version", catalog.protocol_version)
            span.add_event(
                "mcpvisor.catalog",
                {
                    "mcpvisor.parts": sorted(parts),
                    "mcpvisor.tools": len(catalog.tools),
                    "mcpvisor.resources": len(catalog.resources),
                    "mcpvisor.prompts": len(catalog.prompts),
                },
            )

    def events_lost(self, count: int) -> None:
        self._events_lost.add(count)


class _Recording:
    """Whether the provider the hooks use can record: the API's own proxy and no-op cannot.

    A provider passed in that can record is asked once. Otherwise (none passed, or the API's
    proxy, which forwards to the global one once set) the global one is looked up again at
    most once a second until it can record (a global provider, once set, is never replaced),
    so hooks built before the host installs its SDK start recording within a second of it.
    Until then a request skips the span, the context it would make current and every
    instrument, which would all be no-ops (a no-op span has the same span context as the
    current one). Asking the API each time would cost more than that: with no provider set,
    its look-up of an unset environment variable raises and catches a ``KeyError``.
    """

    __slots__ = ("_current", "_due", "_records")

    def __init__(self, current: Callable[[], object], given: object | None) -> None:
        self._records = given is not None and _can_record(given)
        self._current = None if self._records else current
        self._due = -math.inf

    def __call__(self) -> bool:
        if self._records or self._current is None:
            return self._records
        now = time.monotonic()
        if now < self._due:
            return False
        self._due = now + RECHECK_EVERY
        self._records = _can_record(self._current())
        return self._records


RECHECK_EVERY = 1.0
"""Seconds between look-ups of a global provider that could not record yet."""


def _can_record(provider: object) -> bool:
    """The API's own providers (proxy, no-op) live in its modules; an SDK's live elsewhere."""
    module = type(provider).__module__
    return not module.startswith(_API_MODULES)


_API_MODULES = ("opentelemetry.trace", "opentelemetry.metrics")


class _Open:
    """A request's span and the context token that made it current, kept in ``scratch``."""

    __slots__ = ("retried", "span", "token")

    def __init__(self, span: Span, token: Token[otel_context.Context]) -> None:
        self.span = span
        self.token = token
        self.retried = False


def _span_attributes(call: RequestCall, outcome: str, failure: str | None) -> dict[str, Any]:
    """A finished request's span attributes; a span is one request, so they may name it."""
    attributes: dict[str, Any] = {
        "mcpvisor.outcome": outcome,
        "mcpvisor.attempt": call.attempt,
        "mcpvisor.waited": call.waited,
    }
    if call.protocol_version is not None:
        attributes["mcp.protocol.version"] = call.protocol_version
    if failure is not None:
        attributes["error.type"] = failure
    return attributes


def _name_attributes(call: RequestCall, attributes: dict[str, Any]) -> None:
    """What the request names: its method and the tool or prompt, into ``attributes``."""
    if call.method:
        attributes["mcp.method.name"] = call.method
    if call.target is not None:
        if call.method == "tools/call":
            attributes["gen_ai.tool.name"] = call.target
            attributes["gen_ai.operation.name"] = "execute_tool"
        elif call.method == "prompts/get":
            attributes["gen_ai.prompt.name"] = call.target


def _value(state: ServerState | None) -> str:
    return state.value if state is not None else "removed"


def _event_attributes(event: LifecycleEvent) -> dict[str, Any]:
    attributes: dict[str, Any] = {
        "mcpvisor.old": _value(event.old),
        "mcpvisor.new": _value(event.new),
        "mcpvisor.reason": event.reason,
    }
    if event.attempt:
        attributes["mcpvisor.attempt"] = event.attempt
    if event.delay is not None:
        attributes["mcpvisor.delay"] = event.delay
    if event.cause is not None:
        attributes["mcpvisor.cause"] = event.cause
    return attributes


def _describe(error: BaseException | None) -> str | None:
    """The status description: the error's own message, which mcpvisor has redacted."""
    if error is None:
        return None
    text = str(error)
    return text or type(error).__qualname__
