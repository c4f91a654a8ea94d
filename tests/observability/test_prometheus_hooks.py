"""PrometheusMetrics as hooks: request counters and histograms, state changes, lost events."""

from __future__ import annotations

import mcp_types as types
import pytest

import mcpvisor as mv
from mcpvisor.observability.prometheus import PrometheusMetrics
from mcpvisor.supervisor.hooks import RequestCall
from mcpvisor.workers.catalog import Catalog

S = mv.ServerState


def _metrics(**kw: bool) -> PrometheusMetrics:
    """Metrics that have seen ``files`` appear, as every supervised server does first."""
    metrics = PrometheusMetrics(**kw)
    metrics.state_changed(mv.LifecycleEvent("files", None, S.STARTING, "start", 0.0))
    return metrics


def _run(
    metrics: PrometheusMetrics,
    outcome: str,
    *,
    server: str = "files",
    target: str = "read",
    duration: float = 0.02,
    waited: float = 0.0,
    attempts: int = 1,
    refused: int = 0,
) -> None:
    """One request; ``refused`` hand-offs of its last attempt were refused unsent first."""
    call = RequestCall(
        server=server,
        op="call_tool",
        method="tools/call",
        target=target,
        transport="stdio",
        started=0.0,
    )
    metrics.request_started(call)
    for attempt in [*range(1, attempts + 1), *[attempts] * refused]:
        call.attempt = attempt
        metrics.request_attempt(call)
    call.outcome = outcome  # type: ignore[assignment]
    call.duration = duration
    call.waited = waited
    metrics.request_finished(call)


def test_requests_are_counted_by_server_op_and_outcome() -> None:
    metrics = _metrics()
    value = metrics.registry.get_sample_value
    _run(metrics, "ok", duration=0.002)
    _run(metrics, "ok", duration=0.2, waited=0.15, attempts=2, refused=1)
    _run(metrics, "interrupted", server="files~2")
    labels = {"server": "files", "op": "call_tool"}
    assert value("mcpvisor_requests_total", {**labels, "outcome": "ok"}) == 2
    assert value("mcpvisor_requests_total", {**labels, "outcome": "interrupted"}) == 1
    assert value("mcpvisor_request_duration_seconds_count", {**labels, "outcome": "ok"}) == 2
    assert (
        value(
            "mcpvisor_request_duration_seconds_bucket", {**labels, "outcome": "ok", "le": "0.0025"}
        )
        == 1
    )
    assert value("mcpvisor_request_duration_seconds_sum", {**labels, "outcome": "ok"}) == (
        pytest.approx(0.202)
    )
    assert value("mcpvisor_request_wait_seconds_count", labels) == 1
    assert value("mcpvisor_request_retries_total", labels) == 1
    text, _ = metrics.render()
    assert b"tool=" not in text
    assert b"files~2" not in text


def test_the_tool_label_is_opt_in_and_bounded_by_the_catalog() -> None:
    metrics = _metrics(tool_label=True)
    tool = types.Tool(name="read", input_schema={"type": "object"})
    metrics.catalog_changed("files", Catalog(tools=(tool,)), frozenset({"tools"}))
    for target in ("read", "invented", "also-invented"):
        _run(metrics, "ok", target=target)
    value = metrics.registry.get_sample_value
    labels = {"server": "files", "op": "call_tool", "outcome": "ok"}
    assert value("mcpvisor_requests_total", {**labels, "tool": "read"}) == 1
    assert value("mcpvisor_requests_total", {**labels, "tool": "_OTHER"}) == 2
    assert b"invented" not in metrics.render()[0]


def test_state_changes_and_lost_events() -> None:
    metrics = PrometheusMetrics()
    events = [
        mv.LifecycleEvent("files", None, S.STARTING, "start", 0.0),
        mv.LifecycleEvent("files", S.STARTING, S.ACTIVE, "ready", 0.1),
        mv.LifecycleEvent("files", S.ACTIVE, S.FAILED, "crashed", 1.0, attempt=1, delay=0.1),
        mv.LifecycleEvent("files", S.FAILED, S.DROPPED, "intensity", 1.1),
        mv.LifecycleEvent("files", S.DROPPED, S.DROPPED, "escalated", 1.1, kind="escalation"),
        mv.LifecycleEvent("files~1", None, S.STARTING, "added", 1.2),
    ]
    for event in events:
        metrics.state_changed(event)
    metrics.events_lost(3)
    value = metrics.registry.get_sample_value
    assert (
        value(
            "mcpvisor_state_changes_total",
            {"server": "files", "state": "failed", "reason": "crashed"},
        )
        == 1
    )
    assert (
        value(
            "mcpvisor_state_changes_total",
            {"server": "files", "state": "dropped", "reason": "intensity"},
        )
        == 1
    )
    assert (
        value(
            "mcpvisor_state_changes_total",
            {"server": "files", "state": "dropped", "reason": "escalated"},
        )
        is None
    )
    assert b"files~1" not in metrics.render()[0]
    assert value("mcpvisor_events_lost_total") == 3


def test_two_instances_never_share_a_registry() -> None:
    a, b = _metrics(), _metrics()
    _run(a, "ok")
    assert (
        a.registry.get_sample_value(
            "mcpvisor_requests_total", {"server": "files", "op": "call_tool", "outcome": "ok"}
        )
        == 1
    )
    assert (
        b.registry.get_sample_value(
            "mcpvisor_requests_total", {"server": "files", "op": "call_tool", "outcome": "ok"}
        )
        is None
    )


def test_a_server_or_operation_the_caller_invented_is_other() -> None:
    metrics = _metrics()
    _run(metrics, "unavailable", server="typo-server")
    call = RequestCall(
        server="files", op="frobnicate", method="", target=None, transport="stdio", started=0.0
    )
    call.outcome = "usage"
    metrics.request_finished(call)
    value = metrics.registry.get_sample_value
    assert (
        value(
            "mcpvisor_requests_total",
            {"server": "_OTHER", "op": "call_tool", "outcome": "unavailable"},
        )
        == 1
    )
    assert (
        value("mcpvisor_requests_total", {"server": "files", "op": "_OTHER", "outcome": "usage"})
        == 1
    )
    text = metrics.render()[0]
    assert b"typo-server" not in text and b"frobnicate" not in text
