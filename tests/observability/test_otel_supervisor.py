"""OpenTelemetry through a real supervisor: one trace from the host's span to the server's, and
a SIGKILL under load that shows up as a restart and interrupted requests.
"""

from __future__ import annotations

import os
import signal
import sys

import attrs
import trio
from mcp.server.mcpserver import MCPServer
from opentelemetry import trace
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

import mcpvisor as mv
from mcpvisor.observability import OpenTelemetryHooks
from mcpvisor.observability.prometheus import PrometheusMetrics
from tests.conftest import RAW_SERVER
from tests.observability.otel_support import Metrics, by_name
from tests.supervisor.support import QUICK, until

S = mv.ServerState


def _adder() -> MCPServer:
    server = MCPServer("traced")

    @server.tool()
    def add(a: int, b: int) -> int:
        """Add two integers."""
        return a + b

    return server


async def _traced_call(hooks: OpenTelemetryHooks) -> trace.Span:
    # The handshake era: the SDK serves an in-process server over JSON-RPC streams then, and
    # its JSON-RPC dispatcher is what opens the "MCP send" client span (the 2026-07-28 era's
    # direct dispatcher opens none) and injects the trace context into _meta.
    server = mv.InProcessSpec(name="mem", server=_adder(), protocol="legacy")
    spec = mv.SupervisorSpec(servers=[server])
    async with mv.open_supervisor(spec, hooks=hooks) as client:
        with trace.get_tracer("host").start_as_current_span("host") as host:
            result = await client.call_tool("mem", "add", {"a": 1, "b": 2})
        assert result.content[0].text == "3"  # type: ignore[union-attr]
    return host


async def test_the_host_span_parents_mcpvisors_request_span(
    spans: InMemorySpanExporter, metrics: Metrics
) -> None:
    host = await _traced_call(OpenTelemetryHooks(meter_provider=metrics.provider))
    finished = spans.get_finished_spans()
    ours = by_name(finished, "mcpvisor call_tool mem")
    assert ours.parent is not None
    assert ours.parent.span_id == host.get_span_context().span_id
    assert ours.context.trace_id == host.get_span_context().trace_id
    attributes = dict(ours.attributes or {})
    assert attributes["mcp.method.name"] == "tools/call"
    assert attributes["gen_ai.tool.name"] == "add"
    assert attributes["mcpvisor.server"] == "mem"
    assert attributes["network.transport"] == "inprocess"
    assert attributes["mcpvisor.attempt"] == 1
    assert attributes["mcpvisor.outcome"] == "ok"
    assert "error.type" not in attributes
    session = by_name(finished, "mcpvisor session mem")
    assert [e.name for e in session.events][:3] == [
        "mcpvisor.state.starting",
        "mcpvisor.catalog",
        "mcpvisor.state.active",
    ]
    assert session.status.status_code is StatusCode.UNSET
    duration = metrics.point("mcp.client.operation.duration", **{"mcpvisor.server": "mem"})
    assert duration.count == 1
    assert duration.attributes["mcp.method.name"] == "tools/call"
    started = metrics.point("mcpvisor.server.start.duration", **{"mcpvisor.outcome": "ready"})
    assert started.count == 1


async def test_the_sdks_client_span_is_a_child_and_the_server_shares_the_trace(
    spans: InMemorySpanExporter,
) -> None:
    host = await _traced_call(OpenTelemetryHooks())
    finished = spans.get_finished_spans()
    ours = by_name(finished, "mcpvisor call_tool mem")
    sent = by_name(finished, "MCP send tools/call add")
    served = by_name(finished, "tools/call add")
    assert sent.kind is SpanKind.CLIENT and served.kind is SpanKind.SERVER
    assert sent.parent is not None and sent.parent.span_id == ours.context.span_id
    assert served.context.trace_id == host.get_span_context().trace_id


async def test_a_sigkill_under_load_is_a_restart_and_interrupted_requests(
    spans: InMemorySpanExporter, metrics: Metrics
) -> None:
    otel = OpenTelemetryHooks(meter_provider=metrics.provider)
    prom = PrometheusMetrics()
    spec = mv.SupervisorSpec(
        servers=[
            mv.StdioSpec(
                name="victim",
                command=sys.executable,
                args=[str(RAW_SERVER)],
                restart=attrs.evolve(QUICK, backoff=mv.Backoff(initial=0.3, max=0.3, jitter=0)),
            )
        ]
    )
    callers = 5
    arrived = 0
    all_arrived = trio.Event()
    failures: list[BaseException] = []

    async def progress(_progress: float, _total: float | None, _message: str | None) -> None:
        nonlocal arrived
        arrived += 1
        if arrived == callers:
            all_arrived.set()

    async with mv.open_supervisor(spec, hooks=[otel, prom]) as client:

        async def call() -> None:
            try:
                await client.call_tool("victim", "hang", {}, progress=progress, timeout=60)
            except mv.RequestInterruptedError as error:
                failures.append(error)

        pid = client.status().servers["victim"].pid
        assert pid is not None
        with trio.fail_after(60):
            async with trio.open_nursery() as nursery:
                for _ in range(callers):
                    nursery.start_soon(call)
                await all_arrived.wait()
                os.kill(pid, signal.SIGKILL)
        # The callers heard of the death when the core did: the server is FAILED now, so
        # this call waits for the restart.
        assert client.status().servers["victim"].state is S.FAILED
        with trio.fail_after(60):
            echoed = await client.call_tool("victim", "echo", {"text": "after"})
        assert not echoed.is_error
        await until(
            client,
            lambda s: s.servers["victim"].restarts == 1 and s.servers["victim"].state is S.ACTIVE,
        )
        status = client.status()
    assert len(failures) == callers
    assert status.servers["victim"].restarts == 1

    interrupted = metrics.point("mcpvisor.request.interrupted")
    assert interrupted.value == callers
    assert dict(interrupted.attributes) == {
        "mcpvisor.server": "victim",
        "mcp.method.name": "tools/call",
        "mcpvisor.attempt": 1,
    }
    restarts = metrics.point("mcpvisor.server.restarts")
    assert restarts.value == 1
    assert dict(restarts.attributes) == {"mcpvisor.server": "victim", "mcpvisor.reason": "crashed"}
    failed = metrics.point("mcp.client.operation.duration", **{"mcpvisor.outcome": "interrupted"})
    assert failed.count == callers
    assert failed.attributes["error.type"] == "RequestInterruptedError"
    assert failed.attributes["network.transport"] == "stdio"
    session = metrics.point("mcp.client.session.duration", **{"mcpvisor.reason": "crashed"})
    assert session.count == 1 and session.attributes["error.type"] == "crashed"
    # The second session ended with the supervisor, on purpose: no error.
    ended = metrics.point("mcp.client.session.duration", **{"mcpvisor.reason": "stopped"})
    assert "error.type" not in ended.attributes
    state = {
        p.attributes["mcpvisor.state"]: p.value for p in metrics.points("mcpvisor.server.state")
    }
    assert state == {"starting": 0, "active": 0, "failed": 0, "stopped": 1}

    waited = metrics.point("mcpvisor.request.wait.duration")
    assert waited.count == 1 and waited.sum > 0
    assert dict(waited.attributes) == {"mcpvisor.server": "victim", "mcp.method.name": "tools/call"}

    requests = [s for s in spans.get_finished_spans() if s.name == "mcpvisor call_tool victim"]
    assert len(requests) == callers + 1
    after = [s for s in requests if (s.attributes or {}).get("mcpvisor.outcome") == "ok"]
    assert len(after) == 1 and after[0].attributes is not None
    assert after[0].attributes["mcpvisor.waited"] == waited.sum
    for span in requests:
        if span in after:
            continue
        assert span.attributes is not None
        assert span.attributes["error.type"] == "RequestInterruptedError"
        assert span.status.status_code is StatusCode.ERROR
    sessions = [s for s in spans.get_finished_spans() if s.name == "mcpvisor session victim"]
    assert [s.status.status_code for s in sessions] == [StatusCode.ERROR, StatusCode.UNSET]
    assert "mcpvisor.state.failed" in [e.name for e in sessions[0].events]

    value = prom.registry.get_sample_value
    assert (
        value(
            "mcpvisor_requests_total",
            {"server": "victim", "op": "call_tool", "outcome": "interrupted"},
        )
        == callers
    )
    assert (
        value("mcpvisor_request_wait_seconds_count", {"server": "victim", "op": "call_tool"}) == 1
    )
    assert (
        value(
            "mcpvisor_state_changes_total",
            {"server": "victim", "state": "failed", "reason": "crashed"},
        )
        == 1
    )


async def test_a_stalled_subscriber_is_counted_as_lost_events(metrics: Metrics) -> None:
    otel = OpenTelemetryHooks(meter_provider=metrics.provider)
    prom = PrometheusMetrics()
    spec = mv.SupervisorSpec(servers=[mv.InProcessSpec(name="mem", server=_adder())])
    async with (
        mv.open_supervisor(spec, hooks=[otel, prom]) as client,
        client.subscribe(buffer=1) as stalled,
    ):
        for _ in range(2):
            await client.restart("mem")
            await until(client, lambda s: s.servers["mem"].state is S.ACTIVE)
        marker = await stalled.__anext__()
        counted = metrics.point("mcpvisor.events.lost").value
        scraped = prom.registry.get_sample_value("mcpvisor_events_lost_total")
    # Two restarts are four state changes and their catalog events: far more than 1 fits.
    assert isinstance(marker, mv.EventsLost)
    assert marker.count >= 3
    assert counted == scraped == marker.count
