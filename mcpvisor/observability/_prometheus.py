"""Prometheus metrics: gauges read from the status snapshot at scrape time, request metrics
from the hooks seam. Imported only through :mod:`mcpvisor.observability.prometheus`."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any, Protocol

from prometheus_client import CollectorRegistry, Counter, Histogram, make_asgi_app
from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    InfoMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from mcpvisor.observability._naming import Vocabulary, configured_name, is_isolated
from mcpvisor.supervisor.hooks import Hooks, RequestCall
from mcpvisor.supervisor.lifecycle import LifecycleEvent, ServerState
from mcpvisor.supervisor.status import SupervisorStatus
from mcpvisor.workers.catalog import Catalog, CatalogPart

REQUEST_BUCKETS = (
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
    float("inf"),
)
"""Latency buckets in seconds: from a local stdio call (~1 ms) to a slow tool (a minute)."""

HEALTH_VALUES = ("healthy", "degraded", "unavailable")

ASGIApp = Callable[..., Any]
"""An ASGI 3 application: ``await app(scope, receive, send)``."""


class _HasStatus(Protocol):
    def status(self) -> SupervisorStatus: ...


class StatusCollector(Collector):
    """Per-server gauges computed from ``status()`` at scrape time, so requests pay nothing.

    Families: ``mcpvisor_server_up`` (1 while ACTIVE), ``mcpvisor_server_state`` (1 for the
    current state, 0 for the other four), ``mcpvisor_server_restarts_total`` (automatic
    restarts since the server was added or last revived: a revive resets it, which
    ``rate()`` reads as a counter reset), ``mcpvisor_server_tools``,
    ``mcpvisor_server_state_seconds`` (time in the current state), ``mcpvisor_server_info``
    (transport, group, required), ``mcpvisor_isolated_sessions`` (live isolated sessions per
    server) and ``mcpvisor_health`` (1 for the supervisor's health word). Isolated sessions
    come and go with callers, so they are counted, never given series of their own.
    """

    def __init__(self, status: Callable[[], SupervisorStatus]) -> None:
        self._status = status

    def describe(self) -> Iterable[Metric]:
        """The families without samples: registration must not take a snapshot."""
        return list(self._families())

    def collect(self) -> Iterable[Metric]:
        """Take one snapshot and turn it into every family."""
        status = self._status()
        up, state, restarts, tools, seconds, info, isolated, health = self._families()
        per_server_isolated: dict[str, int] = {}
        for name, server in status.servers.items():
            if is_isolated(name) or server.isolated_of is not None:
                base = server.isolated_of or configured_name(name)
                per_server_isolated[base] = per_server_isolated.get(base, 0) + 1
                continue
            up.add_metric([name], 1.0 if server.state is ServerState.ACTIVE else 0.0)
            for each in ServerState:
                state.add_metric([name, each.value], 1.0 if server.state is each else 0.0)
            restarts.add_metric([name], float(server.restarts))
            tools.add_metric([name], float(server.tools))
            seconds.add_metric([name], max(0.0, status.at - server.since))
            info.add_metric(
                [name],
                {
                    "transport": server.transport,
                    "group": server.group or "",
                    "required": "true" if server.required else "false",
                },
            )
        for name, count in per_server_isolated.items():
            isolated.add_metric([name], float(count))
        word = status.health
        for value in HEALTH_VALUES:
            health.add_metric([value], 1.0 if value == word else 0.0)
        return [up, state, restarts, tools, seconds, info, isolated, health]

    @staticmethod
    def _families() -> Iterator[Any]:
        yield GaugeMetricFamily(
            "mcpvisor_server_up", "1 while the server is ACTIVE, else 0.", labels=["server"]
        )
        yield GaugeMetricFamily(
            "mcpvisor_server_state",
            "1 for the state the server is in, 0 for the others.",
            labels=["server", "state"],
        )
        yield CounterMetricFamily(
            "mcpvisor_server_restarts",
            "Automatic restarts since the server was added or last revived.",
            labels=["server"],
        )
        yield GaugeMetricFamily(
            "mcpvisor_server_tools", "Tools in the server's catalog.", labels=["server"]
        )
        yield GaugeMetricFamily(
            "mcpvisor_server_state_seconds",
            "Seconds since the server's last state change.",
            labels=["server"],
        )
        yield InfoMetricFamily(
            "mcpvisor_server", "How the server is reached and supervised.", labels=["server"]
        )
        yield GaugeMetricFamily(
            "mcpvisor_isolated_sessions",
            "Isolated sessions of the server alive now.",
            labels=["server"],
        )
        yield GaugeMetricFamily(
            "mcpvisor_health",
            "1 for the supervisor's health (healthy, degraded or unavailable), 0 for the others.",
            labels=["health"],
        )


class PrometheusMetrics(Hooks):
    """A supervisor's Prometheus metrics: install as hooks, watch a client, serve a scrape.

    ::

        metrics = PrometheusMetrics()
        async with mv.open_supervisor(spec, hooks=metrics) as client:
            metrics.watch(client)
            await nursery.start(metrics.serve, "127.0.0.1", 9464)

    As hooks it counts requests and their latency by ``server``, ``op`` and ``outcome``
    (the :data:`~mcpvisor.supervisor.hooks.RequestOutcome` words):
    ``mcpvisor_requests_total``, ``mcpvisor_request_duration_seconds`` (a histogram, waits and
    retries included), ``mcpvisor_request_wait_seconds`` (time spent waiting for a starting or
    restarting server, for requests that waited), ``mcpvisor_request_retries_total``,
    ``mcpvisor_state_changes_total`` by ``server``, ``state`` (entered) and ``reason``, and
    ``mcpvisor_events_lost_total``. :meth:`watch` adds the snapshot gauges of
    :class:`StatusCollector`.

    No label comes from a request's arguments, and none from a caller's invention: a server
    never supervised and an operation that does not exist are labelled ``_OTHER``.
    ``tool_label=True`` adds a ``tool`` label to the request metrics, with the tool's name
    when the server's catalog lists it and ``_OTHER`` when it does not; leave it off when
    servers have many tools. Use one instance per supervisor; each has its own
    ``registry`` (a fresh ``CollectorRegistry`` unless one is given), so two supervisors in
    one process never clash.
    """

    def __init__(
        self, *, registry: CollectorRegistry | None = None, tool_label: bool = False
    ) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        self._tool_label = tool_label
        self._names = Vocabulary()
        labels = ["server", "op", "outcome", *(["tool"] if tool_label else [])]
        self._requests = Counter(
            "mcpvisor_requests",
            "Handle requests finished, by server, operation and outcome.",
            labels,
            registry=self.registry,
        )
        self._duration = Histogram(
            "mcpvisor_request_duration_seconds",
            "Handle request latency, including waits for a restarting server and retries.",
            labels,
            registry=self.registry,
            buckets=REQUEST_BUCKETS,
        )
        self._wait = Histogram(
            "mcpvisor_request_wait_seconds",
            "Time requests waited for a starting or restarting server before being sent.",
            ["server", "op"],
            registry=self.registry,
            buckets=REQUEST_BUCKETS,
        )
        self._retries = Counter(
            "mcpvisor_request_retries",
            "Requests sent again after their server crashed with them in flight.",
            ["server", "op"],
            registry=self.registry,
        )
        self._changes = Counter(
            "mcpvisor_state_changes",
            "Lifecycle state changes, by server, state entered and reason.",
            ["server", "state", "reason"],
            registry=self.registry,
        )
        self._lost = Counter(
            "mcpvisor_events_lost",
            "Lifecycle events a slow subscriber missed.",
            registry=self.registry,
        )
        self._children: dict[tuple[str, ...], tuple[Any, Any]] = {}
        self._collector: StatusCollector | None = None

    # ---- hooks --------------------------------------------------------------------------

    def request_finished(self, call: RequestCall) -> None:
        server, op = self._names.server(call), self._names.op(call)
        if call.attempt > 1:
            self._retries.labels(server, op).inc()
        key: tuple[str, ...] = (server, op, call.outcome or "ok")
        if self._tool_label:
            key = (*key, self._names.tool(call))
        children = self._children.get(key)
        if children is None:
            children = self._children[key] = (
                self._requests.labels(*key),
                self._duration.labels(*key),
            )
        children[0].inc()
        if call.duration is not None:
            children[1].observe(call.duration)
        if call.waited > 0:
            self._wait.labels(server, op).observe(call.waited)

    def state_changed(self, event: LifecycleEvent) -> None:
        self._names.saw(event)
        if event.kind != "state" or is_isolated(event.server):
            return
        state = event.new.value if event.new is not None else "removed"
        self._changes.labels(event.server, state, event.reason).inc()

    def catalog_changed(self, server: str, catalog: Catalog, parts: frozenset[CatalogPart]) -> None:
        self._names.learn_tools(server, catalog)

    def events_lost(self, count: int) -> None:
        self._lost.inc(count)

    # ---- exposition ----------------------------------------------------------------------

    def watch(self, client: _HasStatus) -> None:
        """Add ``client``'s status gauges to the registry, replacing a previous client's."""
        if self._collector is not None:
            self.registry.unregister(self._collector)
        self._collector = StatusCollector(client.status)
        self.registry.register(self._collector)

    def render(self, accept: str = "") -> tuple[bytes, str]:
        """One scrape: the exposition for an ``Accept`` header, and its content type."""
        encoder, content_type = choose_encoder(accept)
        return encoder(self.registry), content_type

    def asgi_app(self) -> ASGIApp:
        """An ASGI app that answers every HTTP request with a scrape of this registry.

        It also completes the ``lifespan`` protocol, so a server can run it on its own.
        """
        return _ScrapeApp(make_asgi_app(self.registry))

    async def serve(
        self,
        host: str = "127.0.0.1",
        port: int = 9464,
        *,
        task_status: Any = None,
    ) -> None:
        """Serve ``GET /metrics`` over HTTP on ``host:port`` until cancelled.

        Use with ``nursery.start``, which returns the bound ``(host, port)``, so ``port=0``
        picks a free one.
        """
        from mcpvisor.observability._http import serve_metrics

        await serve_metrics(self, host, port, task_status=task_status)


class _ScrapeApp:
    """The ASGI app of :meth:`PrometheusMetrics.asgi_app`.

    An object rather than a function: frameworks such as Starlette take a plain function
    given as a route's endpoint for a request handler, not an ASGI app.
    """

    def __init__(self, scrape: ASGIApp) -> None:
        self._scrape = scrape

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] == "http":
            await self._scrape(scope, receive, send)


def metrics_app(client: _HasStatus, metrics: PrometheusMetrics | None = None) -> ASGIApp:
    """An ASGI app scraping ``client``'s metrics, for a web server to mount at ``/metrics``.

    ``metrics`` is the :class:`PrometheusMetrics` installed as the supervisor's hooks, which
    adds the request metrics; without it the app serves the status gauges only.
    """
    metrics = metrics if metrics is not None else PrometheusMetrics()
    metrics.watch(client)
    return metrics.asgi_app()


def metrics_route(
    client: _HasStatus, metrics: PrometheusMetrics | None = None, *, path: str = "/metrics"
) -> Any:
    """A Starlette ``Route`` serving :func:`metrics_app` at exactly ``path``.

    Prefer it to ``Mount(path, app)``: a mount answers ``GET /metrics`` with a redirect to
    ``/metrics/``.
    """
    from starlette.routing import Route

    return Route(path, endpoint=metrics_app(client, metrics), methods=["GET", "HEAD"])
