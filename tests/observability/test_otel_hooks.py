"""OpenTelemetryHooks turns the calls of the hooks seam into spans and metrics.

These tests call the hooks with the values the runtime passes (RequestCall, LifecycleEvent,
Catalog) in the order it passes them; the end-to-end tests through a real supervisor are in
test_otel_supervisor.py.
"""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

import mcp_types as types
from mcp.shared.exceptions import MCPError
from opentelemetry import trace
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

import mcpvisor as mv
from mcpvisor.observability import OpenTelemetryHooks
from mcpvisor.supervisor.hooks import RequestCall
from mcpvisor.workers import RequestInterruptedError
from mcpvisor.workers.catalog import Catalog
from tests.observability.otel_support import Metrics, by_name

S = mv.ServerState


def _hooks(**kw: object) -> OpenTelemetryHooks:
    """Hooks that have seen ``files`` appear, as every supervised server does first."""
    hooks = OpenTelemetryHooks(**kw)  # type: ignore[arg-type]
    hooks.state_changed(mv.LifecycleEvent("files", None, S.STARTING, "start", 0.0))
    return hooks


def _call(server: str = "files", op: str = "call_tool", target: str | None = "read") -> RequestCall:
    method = {"call_tool": "tools/call", "list_tools": "tools/list"}[op]
    return RequestCall(
        server=server, op=op, method=method, target=target, transport="stdio", started=0.0
    )


def _finish(hooks: OpenTelemetryHooks, call: RequestCall, outcome: str, **kw: object) -> None:
    call.outcome = outcome  # type: ignore[assignment]
    call.duration = kw.pop("duration", 0.25)  # type: ignore[assignment]
    for key, value in kw.items():
        setattr(call, key, value)
    hooks.request_finished(call)


def test_the_request_span_is_current_while_the_request_runs(
    spans: InMemorySpanExporter, metrics: Metrics
) -> None:
    hooks = _hooks(meter_provider=metrics.provider)
    tracer = trace.get_tracer("host")
    with tracer.start_as_current_span("host") as host:
        call = _call()
        hooks.request_started(call)
        call.attempt = 1
        call.protocol_version = "2025-11-25"
        hooks.request_attempt(call)
        with tracer.start_as_current_span("inside", kind=SpanKind.CLIENT):
            pass
        _finish(hooks, call, "ok", waited=0.1)
        assert trace.get_current_span() is host
    finished = spans.get_finished_spans()
    ours = by_name(finished, "mcpvisor call_tool files")
    inside = by_name(finished, "inside")
    assert ours.parent is not None and ours.parent.span_id == host.get_span_context().span_id
    assert inside.parent is not None and inside.parent.span_id == ours.context.span_id
    assert ours.kind is SpanKind.INTERNAL
    assert dict(ours.attributes or {}) == {
        "mcp.method.name": "tools/call",
        "mcpvisor.server": "files",
        "network.transport": "stdio",
        "gen_ai.tool.name": "read",
        "gen_ai.operation.name": "execute_tool",
        "mcpvisor.outcome": "ok",
        "mcp.protocol.version": "2025-11-25",
        "mcpvisor.attempt": 1,
        "mcpvisor.waited": 0.1,
    }
    assert ours.status.status_code is StatusCode.UNSET
    point = metrics.point("mcp.client.operation.duration", **{"mcp.method.name": "tools/call"})
    assert point.count == 1 and point.sum == 0.25
    assert "gen_ai.tool.name" not in point.attributes
    assert metrics.point("mcpvisor.request.wait.duration").sum == 0.1


def test_failures_carry_error_type_and_status(
    spans: InMemorySpanExporter, metrics: Metrics
) -> None:
    hooks = _hooks(meter_provider=metrics.provider)
    cases = [
        ("error", MCPError(-32099, "nope"), "-32099"),
        ("timeout", mv.RequestTimeoutError("files", "call_tool", 1.0), "timeout"),
        (
            "interrupted",
            RequestInterruptedError("files", "call_tool", "the server died", sent=True),
            "RequestInterruptedError",
        ),
    ]
    for outcome, error, expected in cases:
        call = _call()
        hooks.request_started(call)
        call.attempt = 1
        hooks.request_attempt(call)
        _finish(hooks, call, outcome, error=error)
        span = spans.get_finished_spans()[-1]
        assert span.attributes is not None
        assert span.attributes["error.type"] == expected
        assert span.status.status_code is StatusCode.ERROR
        point = metrics.point("mcp.client.operation.duration", **{"mcpvisor.outcome": outcome})
        assert point.attributes["error.type"] == expected
    interrupted = metrics.point("mcpvisor.request.interrupted")
    assert interrupted.value == 1
    assert dict(interrupted.attributes) == {
        "mcpvisor.server": "files",
        "mcp.method.name": "tools/call",
        "mcpvisor.attempt": 1,
    }


def test_a_tool_error_result_is_error_type_tool_error(
    spans: InMemorySpanExporter, metrics: Metrics
) -> None:
    hooks = _hooks(meter_provider=metrics.provider)
    call = _call()
    hooks.request_started(call)
    _finish(hooks, call, "ok", tool_error=True)
    (span,) = spans.get_finished_spans()
    assert span.attributes is not None and span.attributes["error.type"] == "tool_error"
    assert span.status.status_code is StatusCode.ERROR
    assert span.status.description == "tool_error"
    point = metrics.point("mcp.client.operation.duration", **{"mcpvisor.outcome": "ok"})
    assert point.attributes["error.type"] == "tool_error"


def test_a_cancelled_request_is_not_an_error(spans: InMemorySpanExporter) -> None:
    hooks = _hooks()
    call = _call()
    hooks.request_started(call)
    _finish(hooks, call, "cancelled")
    (span,) = spans.get_finished_spans()
    assert span.attributes is not None and "error.type" not in span.attributes
    assert span.status.status_code is StatusCode.UNSET


def test_a_retry_is_an_event_and_a_count(spans: InMemorySpanExporter, metrics: Metrics) -> None:
    hooks = _hooks(meter_provider=metrics.provider)
    call = _call(op="list_tools", target=None)
    hooks.request_started(call)
    # The second hand-off of the retry was refused unsent (its session was ending), so the
    # third comes with the same attempt: still one retry.
    for attempt in (1, 2, 2):
        call.attempt = attempt
        hooks.request_attempt(call)
    _finish(hooks, call, "ok")
    (span,) = spans.get_finished_spans()
    assert [e.name for e in span.events] == ["mcpvisor.retry"]
    assert span.attributes is not None and span.attributes["mcpvisor.attempt"] == 2
    retries = metrics.point("mcpvisor.request.retries")
    assert retries.value == 1
    assert dict(retries.attributes) == {"mcpvisor.server": "files", "mcp.method.name": "tools/list"}


def test_tool_names_on_metrics_are_opt_in_and_bounded_by_the_catalog(
    spans: InMemorySpanExporter, metrics: Metrics
) -> None:
    hooks = _hooks(meter_provider=metrics.provider, tool_names=True)
    tool = types.Tool(name="read", input_schema={"type": "object"})
    hooks.catalog_changed("files", Catalog(tools=(tool,)), frozenset({"tools"}))
    for target in ("read", "made-up-by-a-caller", "another-one"):
        call = _call(target=target)
        hooks.request_started(call)
        _finish(hooks, call, "ok")
    names = sorted(
        p.attributes["gen_ai.tool.name"] for p in metrics.points("mcp.client.operation.duration")
    )
    assert names == ["_OTHER", "read"]
    assert (
        metrics.point("mcp.client.operation.duration", **{"gen_ai.tool.name": "_OTHER"}).count == 2
    )
    on_spans = sorted(
        (s.attributes or {}).get("gen_ai.tool.name", "") for s in spans.get_finished_spans()
    )
    assert on_spans == ["another-one", "made-up-by-a-caller", "read"]


def _event(
    server: str, old: S | None, new: S | None, reason: str, at: float, **kw: object
) -> mv.LifecycleEvent:
    return mv.LifecycleEvent(server=server, old=old, new=new, reason=reason, at=at, **kw)  # type: ignore[arg-type]


def test_a_session_span_records_transitions_and_metrics_follow_states(
    spans: InMemorySpanExporter, metrics: Metrics
) -> None:
    hooks = OpenTelemetryHooks(meter_provider=metrics.provider)
    tracer = trace.get_tracer("host")
    with tracer.start_as_current_span("host") as host:
        hooks.state_changed(_event("files", None, S.STARTING, "start", 0.0))
    hooks.catalog_changed("files", Catalog(protocol_version="2025-11-25"), frozenset({"tools"}))
    hooks.state_changed(_event("files", S.STARTING, S.ACTIVE, "ready", 0.5))
    hooks.state_changed(
        _event("files", S.ACTIVE, S.FAILED, "crashed", 10.5, attempt=1, delay=0.2, cause="killed")
    )
    hooks.state_changed(_event("files", S.FAILED, S.STARTING, "backoff", 10.7, attempt=1))
    hooks.state_changed(_event("files", S.STARTING, S.ACTIVE, "ready", 11.0))
    hooks.events_lost(7)

    first = by_name(spans.get_finished_spans(), "mcpvisor session files")
    assert first.parent is None
    assert [link.context.span_id for link in first.links] == [host.get_span_context().span_id]
    assert [e.name for e in first.events] == [
        "mcpvisor.state.starting",
        "mcpvisor.catalog",
        "mcpvisor.state.active",
        "mcpvisor.state.failed",
    ]
    crash = first.events[-1].attributes
    assert crash is not None
    assert dict(crash) == {
        "mcpvisor.old": "active",
        "mcpvisor.new": "failed",
        "mcpvisor.reason": "crashed",
        "mcpvisor.attempt": 1,
        "mcpvisor.delay": 0.2,
        "mcpvisor.cause": "killed",
    }
    assert first.status.status_code is StatusCode.ERROR
    assert first.attributes is not None and first.attributes["error.type"] == "crashed"
    assert first.attributes["mcp.protocol.version"] == "2025-11-25"

    def state(value: str) -> int:
        return int(metrics.point("mcpvisor.server.state", **{"mcpvisor.state": value}).value)

    assert (state("active"), state("starting"), state("failed")) == (1, 0, 0)
    restarts = metrics.point("mcpvisor.server.restarts")
    assert restarts.value == 1 and restarts.attributes["mcpvisor.reason"] == "crashed"
    started = metrics.point("mcpvisor.server.start.duration", **{"mcpvisor.outcome": "ready"})
    assert started.count == 2 and abs(started.sum - 0.8) < 1e-9
    session = metrics.point("mcp.client.session.duration")
    assert session.count == 1 and session.sum == 10.0
    assert session.attributes["error.type"] == "crashed"
    assert session.attributes["mcp.protocol.version"] == "2025-11-25"
    assert metrics.point("mcpvisor.events.lost").value == 7


def test_drops_are_counted_by_reason_and_failed_starts_by_outcome(metrics: Metrics) -> None:
    hooks = OpenTelemetryHooks(meter_provider=metrics.provider)
    hooks.state_changed(_event("bad", None, S.STARTING, "start", 0.0))
    hooks.state_changed(_event("bad", S.STARTING, S.FAILED, "start_failed", 0.1, attempt=1))
    hooks.state_changed(_event("bad", S.FAILED, S.STARTING, "backoff", 0.2, attempt=1))
    hooks.state_changed(_event("bad", S.STARTING, S.DROPPED, "intensity", 0.4))
    drops = metrics.point("mcpvisor.server.drops")
    assert drops.value == 1 and drops.attributes["mcpvisor.reason"] == "intensity"
    failed = metrics.point("mcpvisor.server.start.duration", **{"mcpvisor.outcome": "start_failed"})
    assert failed.count == 1
    assert (
        metrics.point("mcpvisor.server.start.duration", **{"mcpvisor.outcome": "intensity"}).count
        == 1
    )
    assert metrics.point("mcpvisor.server.state", **{"mcpvisor.state": "dropped"}).value == 1
    assert metrics.points("mcp.client.session.duration") == []


def test_isolated_sessions_report_under_their_server(
    spans: InMemorySpanExporter, metrics: Metrics
) -> None:
    hooks = OpenTelemetryHooks(meter_provider=metrics.provider)
    hooks.state_changed(_event("files~3", None, S.STARTING, "added", 0.0))
    hooks.state_changed(_event("files~3", S.STARTING, S.ACTIVE, "ready", 0.1))
    call = _call(server="files~3")
    hooks.request_started(call)
    _finish(hooks, call, "ok")
    hooks.state_changed(_event("files~3", S.ACTIVE, None, "removed", 1.0))
    assert metrics.points("mcpvisor.server.state") == []
    names = sorted(s.name for s in spans.get_finished_spans())
    assert names == ["mcpvisor call_tool files", "mcpvisor session files"]
    request = by_name(spans.get_finished_spans(), "mcpvisor call_tool files")
    assert request.attributes is not None and request.attributes["mcpvisor.session"] == "files~3"
    assert metrics.point("mcp.client.operation.duration").attributes["mcpvisor.server"] == "files"


def test_without_an_sdk_the_hooks_record_nothing_and_leave_the_context_alone() -> None:
    hooks = OpenTelemetryHooks(
        tracer_provider=trace.NoOpTracerProvider(),
    )
    before = trace.get_current_span()
    call = _call()
    hooks.request_started(call)
    assert not trace.get_current_span().is_recording()
    _finish(hooks, call, "ok")
    assert trace.get_current_span() is before
    assert call.scratch == {}


def test_names_a_caller_invents_never_become_metric_attributes(
    spans: InMemorySpanExporter, metrics: Metrics
) -> None:
    hooks = _hooks(meter_provider=metrics.provider)
    unknown_server = _call(server="no-such-server")
    hooks.request_started(unknown_server)
    _finish(
        hooks,
        unknown_server,
        "unavailable",
        error=mv.UnknownServerError("no-such-server", ["files"]),
    )
    unknown_op = RequestCall(
        server="files", op="frobnicate", method="", target=None, transport="stdio", started=0.0
    )
    hooks.request_started(unknown_op)
    _finish(hooks, unknown_op, "usage")
    points = metrics.points("mcp.client.operation.duration")
    assert sorted(
        (p.attributes["mcpvisor.server"], p.attributes["mcp.method.name"]) for p in points
    ) == [("_OTHER", "tools/call"), ("files", "_OTHER")]
    names = sorted(s.name for s in spans.get_finished_spans())
    assert names == ["mcpvisor _OTHER files", "mcpvisor call_tool _OTHER"]
    invented = by_name(spans.get_finished_spans(), "mcpvisor call_tool _OTHER")
    assert invented.attributes is not None
    assert invented.attributes["mcpvisor.server"] == "no-such-server"


def test_a_sampler_sees_what_the_request_names_when_its_span_starts() -> None:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.sampling import Decision, Sampler, SamplingResult

    seen: list[dict[str, object]] = []

    class Recording(Sampler):
        def should_sample(self, *args: Any, **kw: Any) -> SamplingResult:
            attributes = args[4] if len(args) > 4 else kw.get("attributes")
            seen.append(dict(attributes or {}))
            return SamplingResult(Decision.DROP)

        def get_description(self) -> str:
            return "recording"

    hooks = _hooks(tracer_provider=TracerProvider(sampler=Recording()))
    call = _call(target="read")
    hooks.request_started(call)
    _finish(hooks, call, "ok")
    assert seen[-1]["mcp.method.name"] == "tools/call"
    assert seen[-1]["gen_ai.tool.name"] == "read"
    assert seen[-1]["mcpvisor.server"] == "files"


_BEFORE_AND_AFTER_THE_SDK = """
from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import mcpvisor as mv
from mcpvisor.observability import OpenTelemetryHooks, _otel
from mcpvisor.supervisor.hooks import RequestCall


def request(hooks):
    call = RequestCall(
        server="files", op="list_tools", method="tools/list", target=None,
        transport="stdio", started=0.0,
    )
    hooks.request_started(call)
    started = dict(call.scratch)
    call.outcome, call.duration = "ok", 0.5
    hooks.request_finished(call)
    return started


_otel.RECHECK_EVERY = 0.0  # look the providers up at every request, not once a second
# Both ways a host builds hooks before its SDK: no provider, or the API's proxies passed in.
hooks = OpenTelemetryHooks()
proxied = OpenTelemetryHooks(
    tracer_provider=trace.get_tracer_provider(), meter_provider=metrics.get_meter_provider()
)
for each in (hooks, proxied):
    each.state_changed(mv.LifecycleEvent("files", None, mv.ServerState.STARTING, "start", 0.0))
    assert request(each) == {}, "with only the API's proxies, a request must cost no span"

exporter, reader = InMemorySpanExporter(), InMemoryMetricReader()
provider = TracerProvider()
provider.add_span_processor(SimpleSpanProcessor(exporter))
trace.set_tracer_provider(provider)
metrics.set_meter_provider(MeterProvider(metric_readers=[reader]))

assert request(hooks) != {} and request(proxied) != {}
spans = [s.name for s in exporter.get_finished_spans()]
assert spans == ["mcpvisor list_tools files"] * 2, spans
recorded = {
    m.name: sum(point.count for point in m.data.data_points)
    for r in reader.get_metrics_data().resource_metrics
    for s in r.scope_metrics
    for m in s.metrics
}
assert recorded == {"mcp.client.operation.duration": 2}, recorded
print("ok")
"""


def test_hooks_built_before_the_host_installs_its_sdk_record_once_it_has() -> None:
    # A process of its own: this one's global providers were set by other tests.
    done = subprocess.run(
        [sys.executable, "-c", _BEFORE_AND_AFTER_THE_SDK],
        capture_output=True,
        text=True,
        timeout=60,
        env={k: v for k, v in os.environ.items() if not k.startswith("OTEL_")},
    )
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr
