"""The OpenTelemetry SDK fixtures of :mod:`tests.observability.otel_support`."""

from tests.observability.otel_support import metrics, spans

__all__ = ["metrics", "spans"]
