"""Every example runs against the bundled servers and does what its docstring promises."""

from __future__ import annotations

import json
from typing import Any

import pytest
import trio
from examples_support import load_example


async def http(url: str, method: str, path: str, body: object = None) -> tuple[int, Any]:
    """One HTTP/1.1 request with ``Connection: close``; the status and the JSON body."""
    host_port = url.split("//", 1)[1].rstrip("/")
    host, port = host_port.rsplit(":", 1)
    payload = b"" if body is None else json.dumps(body).encode()
    head = (
        f"{method} {path} HTTP/1.1\r\nHost: {host_port}\r\nConnection: close\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n\r\n"
    )
    stream = await trio.open_tcp_stream(host, int(port))
    async with stream:
        await stream.send_all(head.encode() + payload)
        raw = b""
        while chunk := await stream.receive_some():
            raw += chunk
    header, _, content = raw.partition(b"\r\n\r\n")
    status = int(header.split()[1])
    return status, json.loads(content)


async def test_health_service_reports_health_and_forwards_calls() -> None:
    example = load_example("health_service")
    async with trio.open_nursery() as nursery:
        url = await nursery.start(
            lambda task_status: example.serve_health(
                example.services(), port=0, task_status=task_status
            )
        )
        status, health = await http(url, "GET", "/health")
        assert status == 200
        assert health["status"] == "healthy"
        assert health["servers"]["notes"]["state"] == "active"

        status, result = await http(
            url, "POST", "/call", {"tool": "notes__add", "arguments": {"a": 1, "b": 2}}
        )
        assert status == 200
        assert result["content"][0]["text"] == "3.0"

        status, result = await http(url, "POST", "/call", {"tool": "notes__nope"})
        assert status == 404
        assert "nope" in result["error"]
        status, _ = await http(url, "POST", "/call", {"arguments": {}})
        assert status == 400
        status, _ = await http(url, "GET", "/elsewhere")
        assert status == 404
        nursery.cancel_scope.cancel()


async def test_route_query_sends_each_query_to_the_right_server() -> None:
    example = load_example("route_query")
    assert example.route("Will it rain in Oslo?") == "weather"
    assert example.route("add 1 and 2") == "notes"
    answers = await example.main()
    assert len(answers) == len(example.QUERIES)
    assert answers[0].startswith("[weather__forecast] Oslo:")
    assert answers[1] == "[notes__add] 42.0"
    assert answers[2] == "[notes__word_count] 4"
    assert answers[4] == "[notes__echo] let it crash"


async def test_alert_on_drop_alerts_once_for_the_dropped_server(
    capsys: pytest.CaptureFixture[str],
) -> None:
    example = load_example("alert_on_drop")
    alerts = await example.main()
    assert [a.server for a in alerts] == ["broken"]
    assert alerts[0].restarts == 2
    assert "ALERT: broken dropped" in capsys.readouterr().err


async def test_resilient_manager_answers_through_crashes() -> None:
    example = load_example("resilient_manager")
    report = await example.main(calls=7)
    # Each process answers two lookups and dies on the third: 7 lookups take 3 crashes.
    assert report["answered"] == 7
    assert report["restarts"] >= 3
    assert report["interrupted"] >= 3
    assert report["active"] == ["flaky"]
    assert report["dropped"] == []
