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

_EXPORTER = InMemorySpanExporter()


def _install() -> None:
    current = trace.get_tracer_provider()
    if isinstance(current, TracerProvider):
        provider = current
    else:
        provider = TracerProvider()
        trace.set_tracer_provider(provider)
    if not getattr(provider, "_mcpvisor_test_exporter", False):
        provider.add_span_processor(SimpleSpanProcessor(_EXPORTER))
        provider._mcpvisor_test_exporter = True  # type: ignore[attr-defined]


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    """The in-memory exporter behind the global tracer provider, emptied for this test."""
    _install()
    _EXPORTER.clear()
    yield _EXPORTER
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
