"""Prometheus metrics for a supervisor (the ``mcpvisor[prometheus]`` extra).

:class:`PrometheusMetrics` is a :class:`~mcpvisor.supervisor.hooks.Hooks` that counts
requests and owns a registry; :meth:`PrometheusMetrics.watch` adds gauges read from the
status snapshot at scrape time; :meth:`PrometheusMetrics.serve` is a tiny Trio HTTP server
for ``GET /metrics`` (what ``mcpvisor run --metrics HOST:PORT`` runs) and
:func:`metrics_app` an ASGI app for a web server to mount (:func:`metrics_route` wraps it in
a Starlette route).
"""

from __future__ import annotations

try:
    import prometheus_client  # noqa: F401
except ImportError:  # pragma: no cover - exercised in a child process by the tests
    raise ImportError(
        "mcpvisor.observability.prometheus needs the 'prometheus' extra: "
        "pip install 'mcpvisor[prometheus]'"
    ) from None

from mcpvisor.observability._prometheus import (
    REQUEST_BUCKETS,
    PrometheusMetrics,
    StatusCollector,
    metrics_app,
    metrics_route,
)

__all__ = [
    "REQUEST_BUCKETS",
    "PrometheusMetrics",
    "StatusCollector",
    "metrics_app",
    "metrics_route",
]
