"""Scenarios 11 and 12: what OpenTelemetryHooks cost a call_tool, with an SDK and without one.

Scenario 11: four supervisors, one stdio MCPServer process each, take turns in rounds: one
without hooks; one with :class:`~mcpvisor.OpenTelemetryHooks` and the OpenTelemetry SDK
recording every span (ours and the mcp SDK's own ``MCP send`` span) into an in-memory
exporter and every metric into an in-memory reader; and one with the SDK and no hooks, which
records only the mcp SDK's own span: what tracing costs before mcpvisor adds anything, so
that scenario 11 can say how much of its figure is ours. A fourth, a second supervisor
without hooks, shows how far apart two identical sides land in the same run.

A tracer provider can be installed once per process, so the global one is a switch that
sends spans to the SDK only while the SDK side runs; the no-hooks sides see the no-op tracer.

Scenario 12 runs in a child process (:mod:`bench.scenarios.otel_absent`): a host that never
installed an SDK has the API's proxy providers, which no process that ran scenario 11 has.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from functools import partial
from typing import Any

import attrs
import trio
from opentelemetry import trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider as SdkTracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import mcpvisor as mv
from bench.common import (
    MCP_SERVER,
    Config,
    Outcome,
    Series,
    alternate,
    ratio,
    series,
    stdio_spec,
    text_of,
    timed_calls,
)


class _SwitchTracer(trace.Tracer):
    """Starts spans on the SDK's tracer while the switch is on, else on the no-op tracer."""

    def __init__(self, switch: _Switch, real: trace.Tracer) -> None:
        self._switch = switch
        self._real = real
        self._noop = trace.NoOpTracer()

    def _now(self) -> trace.Tracer:
        return self._real if self._switch.on else self._noop

    def start_span(self, *args: Any, **kwargs: Any) -> trace.Span:
        return self._now().start_span(*args, **kwargs)

    @contextmanager
    def start_as_current_span(self, *args: Any, **kwargs: Any) -> Iterator[trace.Span]:  # type: ignore[override]
        with self._now().start_as_current_span(*args, **kwargs) as span:
            yield span


class _Switch(trace.TracerProvider):
    def __init__(self) -> None:
        self.on = False
        self.exporter = InMemorySpanExporter()
        self.sdk = SdkTracerProvider()
        self.sdk.add_span_processor(SimpleSpanProcessor(self.exporter))

    def get_tracer(self, *args: Any, **kwargs: Any) -> trace.Tracer:
        return _SwitchTracer(self, self.sdk.get_tracer(*args, **kwargs))


_SWITCH: _Switch | None = None


def _switch() -> _Switch:
    global _SWITCH
    if _SWITCH is None:
        _SWITCH = _Switch()
        trace.set_tracer_provider(_SWITCH)
    return _SWITCH


@attrs.frozen
class _Sides:
    plain: list[float]
    sdk: list[float]
    sdk_only: list[float]
    again: list[float]
    exported: int
    turn: int


async def _measure(cfg: Config) -> _Sides:
    switch = _switch()
    reader = InMemoryMetricReader()
    # The SDK's provider directly, as a host that installed the SDK gets it: through the
    # switch, mcpvisor's span would also pay the switch's own indirection.
    with_sdk = mv.OpenTelemetryHooks(
        tracer_provider=switch.sdk, meter_provider=MeterProvider(metric_readers=[reader])
    )
    plain: list[float] = []
    sdk: list[float] = []
    sdk_only: list[float] = []
    again: list[float] = []
    exported = 0
    args = {"a": 1, "b": 2}

    def spec() -> mv.SupervisorSpec:
        return mv.SupervisorSpec(servers=[stdio_spec("s", MCP_SERVER)])

    async with (
        mv.open_supervisor(spec()) as bare,
        mv.open_supervisor(spec(), hooks=with_sdk) as traced,
        mv.open_supervisor(spec()) as untraced,
        mv.open_supervisor(spec()) as twin,
    ):
        clients: Sequence[Any] = (bare, traced, untraced, twin)
        for client in clients:
            assert text_of(await client.call_tool("s", "add", args)) == "3"
            await timed_calls(partial(client.call_tool, "s", "add", args), cfg.size(100, 5), [])
        # Short turns, many rounds: on a shared machine the load drifts within seconds, and
        # a 1.02 goal needs the sides to see the same drift.
        n = cfg.size(20, 5)

        async def side_plain() -> None:
            await timed_calls(lambda: bare.call_tool("s", "add", args), n, plain)

        async def with_switch(client: Any, into: list[float]) -> int:
            switch.on = True
            try:
                await timed_calls(lambda: client.call_tool("s", "add", args), n, into)
            finally:
                switch.on = False
            spans = len(switch.exporter.get_finished_spans())
            switch.exporter.clear()
            return spans

        async def side_sdk() -> None:
            nonlocal exported
            exported += await with_switch(traced, sdk)

        async def side_sdk_only() -> None:
            await with_switch(untraced, sdk_only)

        async def side_again() -> None:
            await timed_calls(lambda: twin.call_tool("s", "add", args), n, again)

        await alternate(
            cfg.size(200, 2),
            [side_plain, side_sdk, side_sdk_only, side_again],
            settle=False,
        )
    return _Sides(plain, sdk, sdk_only, again, exported, n)


async def with_sdk(cfg: Config) -> Outcome:
    """11: call_tool latency with OpenTelemetryHooks and the SDK exporting to memory."""
    sides = await _measure(cfg)
    a = series("hooks + OTel SDK, in-memory export", sides.sdk)
    b = series("no hooks, no SDK", sides.plain)
    floor = series("OTel SDK, no hooks (the mcp SDK's own span only)", sides.sdk_only)
    r = ratio(a, b)
    return Outcome(
        11,
        "call_tool latency with OpenTelemetry traces and metrics exported to memory",
        (a, b, floor),
        "with SDK / without (median)",
        r,
        "<= 1.10",
        r <= 1.10,
        (
            f"{len(sides.sdk)} calls per side in {sides.turn}-call turns, rotating, on a stdio "
            f"MCPServer each; {sides.exported} spans exported (ours and the mcp SDK's client "
            "span per call)",
            f"the mcp SDK's own span alone / no SDK = {ratio(floor, b):.3f}: tracing's cost "
            "before mcpvisor adds its span and metrics",
            f"mcpvisor's share: hooks + SDK / SDK without hooks = {ratio(a, floor):.3f} "
            f"({(a.median - floor.median) * 1e6:.0f} us per call)",
            _noise(series("again", sides.again), series("plain", sides.plain)),
        ),
    )


async def without_sdk(cfg: Config) -> Outcome:
    """12: call_tool latency with OpenTelemetryHooks and no SDK installed (the API's proxies)."""
    command = [sys.executable, "-m", "bench.scenarios.otel_absent"]
    done = await trio.run_process(command + ["--quick"] * cfg.quick, capture_stdout=True)
    sides = json.loads(done.stdout)
    a, b = series("hooks, no SDK", sides["hooks"]), series("no hooks", sides["plain"])
    r = ratio(a, b)
    return Outcome(
        12,
        "call_tool latency with OpenTelemetryHooks and no SDK",
        (a, b),
        "hooks / no hooks (median)",
        r,
        "<= 1.02",
        r <= 1.02,
        (
            f"{len(a.samples)} calls per side in 20-call turns, rotating, on a stdio MCPServer "
            "each, in a process of their own that never installed an OpenTelemetry provider",
            _noise(series("again", sides["again"]), b),
        ),
    )


def _noise(twin: Series, plain: Series) -> str:
    return (
        "the run's noise, two identical sides (A/A): a second supervisor without hooks / the "
        f"first = {ratio(twin, plain):.3f}"
    )
