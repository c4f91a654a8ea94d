"""OpenTelemetry SDK support for the observability tests: spans and metrics kept in memory.

The SDK's own spans (``MCP send ...``, the in-process server's) go through the global tracer
provider, which can be set once per process: the first test that needs spans installs one
with an in-memory exporter, and every test clears it before use.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ALWAYS_ON, Sampler, SamplingResult

_EXPORTER = InMemorySpanExporter()


class _WhileTesting(Sampler):
    """Records spans only while a test holds the ``spans`` fixture.

    The global provider outlives the test that installed it; the rest of the suite must not
    pile spans up in memory or pay for recording them.
    """

    active = False

    def should_sample(self, *args: Any, **kwargs: Any) -> SamplingResult:
        return (ALWAYS_ON if self.active else ALWAYS_OFF).should_sample(*args, **kwargs)

    def get_description(self) -> str:
        return "mcpvisor tests: while the spans fixture is active"


_SAMPLER = _WhileTesting()


_INSTALLED: list[bool] = []


def _install() -> None:
    if _INSTALLED:
        return
    provider = TracerProvider(sampler=_SAMPLER)
    provider.add_span_processor(SimpleSpanProcessor(_EXPORTER))
    trace.set_tracer_provider(provider)
    current = trace.get_tracer_provider()
    if current is not provider:  # something installed one first: export from that one
        assert isinstance(current, TracerProvider), f"a foreign tracer provider: {current!r}"
        current.add_span_processor(SimpleSpanProcessor(_EXPORTER))
    _INSTALLED.append(True)


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    """The in-memory exporter behind the global tracer provider, emptied for this test."""
    _install()
    _EXPORTER.clear()
    _SAMPLER.active = True
    try:
        yield _EXPORTER
    finally:
        _SAMPLER.active = False
        _EXPORTER.clear()


class Metrics:
    """A meter provider with an in-memory reader, and look-ups by name and attributes."""

    def __init__(self) -> None:
        self.reader = InMemoryMetricReader()
        self.provider = MeterProvider(metric_readers=[self.reader])

    def points(self, name: str) -> list[Any]:
        """Every data point of instrument ``name`` collected now."""
        data = self.reader.get_metrics_data()
        found: list[Any] = []
        if data is None:
            return found
        for resource in data.resource_metrics:
            for scope in resource.scope_metrics:
                for metric in scope.metrics:
                    if metric.name == name:
                        found.extend(metric.data.data_points)
        return found

    def point(self, name: str, **attributes: Any) -> Any:
        """The one data point of ``name`` whose attributes include ``attributes``."""
        matching = [
            p
            for p in self.points(name)
            if all(p.attributes.get(k) == v for k, v in attributes.items())
        ]
        assert len(matching) == 1, (
            name,
            attributes,
            [dict(p.attributes) for p in self.points(name)],
        )
        return matching[0]


@pytest.fixture
def metrics() -> Metrics:
    return Metrics()


def by_name(finished: tuple[ReadableSpan, ...], name: str) -> ReadableSpan:
    """The one finished span called ``name``."""
    found = [s for s in finished if s.name == name]
    assert len(found) == 1, (name, [s.name for s in finished])
    return found[0]
