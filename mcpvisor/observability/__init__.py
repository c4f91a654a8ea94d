"""Observability for a supervisor, plugged into the host-hooks seam.

- :class:`OpenTelemetryHooks`: traces and metrics through ``opentelemetry-api`` (a
  dependency of mcp already), no-op until the host installs an OpenTelemetry SDK.
- :mod:`mcpvisor.observability.prometheus` (extra ``mcpvisor[prometheus]``): a Prometheus
  registry with request metrics and status gauges, an ASGI app and a small scrape server.
"""

from mcpvisor.observability._otel import DURATION_BUCKETS, OpenTelemetryHooks

__all__ = ["DURATION_BUCKETS", "OpenTelemetryHooks"]
