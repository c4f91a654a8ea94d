"""The real /metrics endpoint over HTTP, parsed with prometheus_client's parser.

Every gauge must agree with the status snapshot taken right after the scrape, for a
supervisor whose servers are in different states (one ACTIVE, one DROPPED after its
restarts, one lazy and STOPPED).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx2 as httpx
import trio
from prometheus_client.parser import text_string_to_metric_families

import mcpvisor as mv
from mcpvisor.observability.prometheus import PrometheusMetrics, metrics_app, metrics_route
from tests.conftest import RAW_SERVER
from tests.supervisor.support import QUICK, until

S = mv.ServerState
ROOT = Path(__file__).resolve().parents[2]


def _specs() -> mv.SupervisorSpec:
    return mv.SupervisorSpec(
        servers=[
            mv.StdioSpec(name="good", command=sys.executable, args=[str(RAW_SERVER)]),
            mv.StdioSpec(
                name="broken",
                command=sys.executable,
                args=[str(RAW_SERVER), "--exit-at-start", "3"],
                restart=QUICK,
            ),
            mv.StdioSpec(
                name="later", command=sys.executable, args=[str(RAW_SERVER)], start="lazy"
            ),
        ]
    )


def _settled(status: mv.SupervisorStatus) -> bool:
    s = status.servers
    return s["good"].state is S.ACTIVE and s["broken"].state is S.DROPPED


@asynccontextmanager
async def _serving() -> AsyncIterator[tuple[mv.SupervisorClient, PrometheusMetrics, str]]:
    metrics = PrometheusMetrics()
    async with mv.open_supervisor(_specs()) as client, trio.open_nursery() as nursery:
        metrics.watch(client)
        host, port = await nursery.start(metrics.serve, "127.0.0.1", 0)
        await until(client, _settled)
        try:
            yield client, metrics, f"http://{host}:{port}"
        finally:
            nursery.cancel_scope.cancel()


def _samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return out


def _get(
    samples: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str
) -> float:
    return samples[(name, frozenset(labels.items()))]


async def test_scrape_matches_the_status_snapshot() -> None:
    async with _serving() as (client, _metrics, base), httpx.AsyncClient() as http:
        response = await http.get(f"{base}/metrics")
        status = client.status()
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    samples = _samples(response.text)
    for name, server in status.servers.items():
        assert _get(samples, "mcpvisor_server_up", server=name) == (
            1.0 if server.state is S.ACTIVE else 0.0
        )
        for state in S:
            assert _get(samples, "mcpvisor_server_state", server=name, state=state.value) == (
                1.0 if server.state is state else 0.0
            )
        assert _get(samples, "mcpvisor_server_restarts_total", server=name) == server.restarts
        assert _get(samples, "mcpvisor_server_tools", server=name) == server.tools
        assert (
            0.0
            <= _get(samples, "mcpvisor_server_state_seconds", server=name)
            <= status.at - server.since
        )
        info = _get(
            samples,
            "mcpvisor_server_info",
            server=name,
            transport="stdio",
            group="",
            required="false",
        )
        assert info == 1.0
    assert status.servers["broken"].restarts == QUICK.max_restarts
    assert status.servers["good"].tools > 0
    assert status.servers["later"].state is S.STOPPED
    for word in ("healthy", "degraded", "unavailable"):
        assert _get(samples, "mcpvisor_health", health=word) == (
            1.0 if status.health == word else 0.0
        )
    assert status.health == "degraded"


async def test_an_isolated_session_is_counted_not_labelled() -> None:
    async with _serving() as (client, _metrics, base), httpx.AsyncClient() as http:
        async with client.isolated("good") as session:
            assert session.label.startswith("good~")
            during = _samples((await http.get(f"{base}/metrics")).text)
        after = _samples((await http.get(f"{base}/metrics")).text)
    assert _get(during, "mcpvisor_isolated_sessions", server="good") == 1.0
    assert not any(label.startswith("good~") for (_n, labels) in during for (_k, label) in labels)
    assert ("mcpvisor_isolated_sessions", frozenset({("server", "good")})) not in after


async def test_only_get_of_metrics_is_served() -> None:
    async with _serving() as (_client, _metrics, base), httpx.AsyncClient() as http:
        assert (await http.get(f"{base}/")).status_code == 404
        refused = await http.post(f"{base}/metrics", content=b"x")
        assert refused.status_code == 405
        assert refused.headers["allow"] == "GET, HEAD"
        head = await http.head(f"{base}/metrics")
        assert head.status_code == 200
        assert int(head.headers["content-length"]) > 0
        assert head.content == b""
        open_metrics = await http.get(
            f"{base}/metrics", headers={"Accept": "application/openmetrics-text; version=1.0.0"}
        )
        assert open_metrics.headers["content-type"].startswith("application/openmetrics-text")
        assert open_metrics.text.rstrip().endswith("# EOF")


async def test_a_stalled_client_does_not_block_other_scrapes() -> None:
    async with _serving() as (_client, _metrics, base), httpx.AsyncClient() as http:
        host, port = base.removeprefix("http://").split(":")
        stalled = await trio.open_tcp_stream(host, int(port))
        await stalled.send_all(b"GET /metrics HTTP/1.1\r\n")
        with trio.fail_after(30):
            assert (await http.get(f"{base}/metrics")).status_code == 200
        garbage = await trio.open_tcp_stream(host, int(port))
        await garbage.send_all(b"nonsense\r\n\r\n")
        with trio.fail_after(30):
            reply = await garbage.receive_some(1024)
        assert reply.startswith(b"HTTP/1.1 400 ")
        await stalled.aclose()
        await garbage.aclose()


async def test_the_asgi_app_scrapes_the_handle() -> None:
    async with mv.open_supervisor(_specs()) as client:
        await until(client, _settled)
        app = metrics_app(client)
        sent: list[dict[str, object]] = []

        async def receive() -> dict[str, object]:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: dict[str, object]) -> None:
            sent.append(message)

        scope = {"type": "http", "method": "GET", "path": "/metrics", "headers": []}
        await app(scope, receive, send)
        status = client.status()
    assert sent[0]["status"] == 200
    body = sent[1]["body"]
    assert isinstance(body, bytes)
    samples = _samples(body.decode())
    assert _get(samples, "mcpvisor_server_up", server="good") == 1.0
    assert _get(samples, "mcpvisor_server_restarts_total", server="broken") == float(
        status.servers["broken"].restarts
    )


def test_importing_without_the_extra_names_it() -> None:
    code = (
        "import sys; sys.modules['prometheus_client'] = None\n"
        "import mcpvisor.observability.prometheus\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode != 0
    last = done.stderr.strip().splitlines()[-1]
    assert last == (
        "ImportError: mcpvisor.observability.prometheus needs the 'prometheus' extra: "
        "pip install 'mcpvisor[prometheus]'"
    )


def _family(name: str) -> str:
    return re.sub(r"_(total|bucket|count|sum|info)$", "", name)


async def test_the_grafana_dashboard_queries_only_metrics_a_scrape_returns() -> None:
    dashboard = json.loads((ROOT / "examples" / "grafana_dashboard.json").read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    used = {_family(n) for e in exprs for n in re.findall(r"\bmcpvisor_[a-z_]+", e)}
    async with _serving() as (_client, _metrics, base), httpx.AsyncClient() as http:
        text = (await http.get(f"{base}/metrics")).text
    served = {_family(f.name) for f in text_string_to_metric_families(text)}
    assert used, "the dashboard has no queries"
    assert used <= served, used - served
    titles = " ".join(p["title"] for p in dashboard["panels"]).lower()
    for topic in ("state", "restarts", "request rate", "latency", "waiting"):
        assert topic in titles


async def test_the_readme_scrape_is_one_a_scrape_returns() -> None:
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("## Observability\n") :]
    section = section[: section.index("\n## ")]
    block = re.search(r"```\n(mcpvisor_.*?)```", section, re.S)
    assert block is not None
    shown = {_family(f.name) for f in text_string_to_metric_families(block.group(1))}
    async with _serving() as (_client, _metrics, base), httpx.AsyncClient() as http:
        text = (await http.get(f"{base}/metrics")).text
    served = {_family(f.name) for f in text_string_to_metric_families(text)}
    assert len(shown) >= 10
    assert shown <= served, shown - served


async def test_the_asgi_app_serves_scrapes_under_hypercorn() -> None:
    from hypercorn.config import Config
    from hypercorn.trio import serve

    config = Config()
    config.bind = ["127.0.0.1:0"]
    config.accesslog = None
    metrics = PrometheusMetrics()
    async with mv.open_supervisor(_specs(), hooks=metrics) as client:
        await until(client, _settled)
        await client.call_tool("good", "echo", {"text": "hi"})
        async with trio.open_nursery() as nursery, httpx.AsyncClient() as http:
            binds = await nursery.start(serve, metrics_app(client, metrics), config)
            response = await http.get(f"{binds[0]}/metrics")
            nursery.cancel_scope.cancel()
        status = client.status()
    assert response.status_code == 200
    samples = _samples(response.text)
    assert _get(samples, "mcpvisor_server_up", server="good") == 1.0
    assert _get(samples, "mcpvisor_server_tools", server="good") == status.servers["good"].tools
    assert (
        _get(samples, "mcpvisor_requests_total", server="good", op="call_tool", outcome="ok") == 1.0
    )


async def test_the_starlette_route_answers_at_exactly_metrics() -> None:
    from starlette.applications import Starlette

    metrics = PrometheusMetrics()
    async with mv.open_supervisor(_specs(), hooks=metrics) as client:
        await until(client, _settled)
        app = Starlette(routes=[metrics_route(client, metrics)])
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as http:
            scrape = await http.get("/metrics")
            refused = await http.post("/metrics")
    assert scrape.status_code == 200
    assert _get(_samples(scrape.text), "mcpvisor_server_up", server="good") == 1.0
    assert refused.status_code == 405
