"""The FastAPI example under a real uvicorn process: endpoints, a killed server, SIGTERM."""

from __future__ import annotations

import json
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "fastapi_service.py"
RECORDING_SERVER = Path(__file__).resolve().parents[1] / "aio" / "recording_server.py"


def http(url: str, body: object = None) -> tuple[int, Any]:
    """One request with the standard library; the status and the JSON body."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def until(check: Any, what: str, bound: float = 30.0) -> Any:
    deadline = time.monotonic() + bound
    while not (value := check()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)
    return value


def test_fastapi_service_under_uvicorn(procs: Any) -> None:
    service = subprocess.Popen(
        [sys.executable, str(EXAMPLE), "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert service.stdout is not None
        url = service.stdout.readline().split()[-1]
        assert url.startswith("http://127.0.0.1:")
        status, health = until(lambda: _try(url + "/health"), "uvicorn to serve")
        assert status == 200
        assert health["status"] == "healthy"
        assert health["active"] == ["notes", "scratch"]

        status, tools = http(url + "/tools")
        assert status == 200
        assert {t["name"] for t in tools} >= {"notes__add", "scratch__echo"}

        status, result = http(url + "/call", {"tool": "notes__add", "arguments": {"a": 1, "b": 2}})
        assert (status, result["content"][0]["text"]) == (200, "3.0")
        status, result = http(url + "/call", {"tool": "notes__nope"})
        assert status == 404 and "nope" in result["error"]
        status, _ = http(url + "/call", {"arguments": {}})
        assert status == 422

        pids = [health["servers"][name]["pid"] for name in ("notes", "scratch")]
        os.kill(pids[1], signal.SIGKILL)

        def reported() -> dict[str, Any] | None:
            _, health = http(url + "/health")
            scratch = health["servers"]["scratch"]
            return scratch if scratch["restarts"] == 1 and scratch["state"] == "active" else None

        scratch = until(reported, "/health to report the restart")
        assert "SIGKILL" in scratch["last_error"] or "signal" in scratch["last_error"]
        assert scratch["pid"] not in (None, pids[1])
        pids.append(scratch["pid"])
        status, result = http(url + "/call", {"tool": "scratch__echo", "arguments": {"text": "b"}})
        assert (status, result["content"][0]["text"]) == (200, "b")

        service.send_signal(signal.SIGTERM)
        out, err = service.communicate(timeout=60)
        # uvicorn shuts down gracefully, then re-raises the signal it caught.
        assert service.returncode in (0, -signal.SIGTERM), err
        assert out.strip().splitlines()[-1] == "every server is stopped", err
        assert "Traceback" not in err, err
        for pid in pids:
            until(lambda pid=pid: not procs.pid_alive(pid), f"server {pid} to be gone", 10)
    finally:
        if service.poll() is None:
            service.kill()
            service.wait()


def test_a_client_that_disconnects_cancels_its_call_on_the_server(
    tmp_path: Path, procs: Any
) -> None:
    record = tmp_path / "record"
    config = tmp_path / "mcp.json"
    server = {"command": sys.executable, "args": [str(RECORDING_SERVER), str(record), "--arrivals"]}
    config.write_text(json.dumps({"mcpServers": {"rec": server}}))
    service = subprocess.Popen(
        [sys.executable, str(EXAMPLE), "--port", "0", "--config", str(config)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()
    assert service.stdout is not None
    threading.Thread(
        target=lambda: [lines.put(line) for line in service.stdout], daemon=True
    ).start()

    def recorded(prefix: str) -> bool:
        return record.exists() and any(
            line.startswith(prefix) for line in record.read_text().splitlines()
        )

    try:
        url = lines.get(timeout=60).split()[-1]
        until(lambda: _try(url + "/health"), "uvicorn to serve")
        host, port = url.removeprefix("http://").split(":")
        body = json.dumps({"tool": "rec__hang", "arguments": {}}).encode()
        head = f"POST /call HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
        with socket.create_connection((host, int(port))) as client:
            client.sendall(f"{head}Content-Length: {len(body)}\r\n\r\n".encode() + body)
            until(lambda: recorded("arrived "), "the call to reach the server")
        # Starlette would leave the handler waiting on a call that never answers.
        until(lambda: recorded("cancelled "), "the server to be told the call is cancelled")
        said = [lines.get(timeout=30) for _ in range(1)]
        assert said == ["rec__hang: the client went away; its call is cancelled\n"]
        status, result = http(url + "/call", {"tool": "rec__echo", "arguments": {"text": "ok"}})
        assert (status, result["content"][0]["text"]) == (200, "ok")
        pid = http(url + "/health")[1]["servers"]["rec"]["pid"]
        service.send_signal(signal.SIGTERM)
        _, err = service.communicate(timeout=60)
        assert service.returncode in (0, -signal.SIGTERM), err
        assert "Traceback" not in err, err
        until(lambda: not procs.pid_alive(pid), f"server {pid} to be gone", 10)
    finally:
        if service.poll() is None:
            service.kill()
            service.wait()


def _try(url: str) -> tuple[int, Any] | None:
    try:
        return http(url)
    except OSError:
        return None


def test_health_is_503_when_a_required_server_is_down() -> None:
    import asyncio

    from examples_support import load_example

    example = load_example("fastapi_service")
    app = example.make_app(example.services())

    async def get(path: str) -> tuple[int, Any]:
        sent: list[dict[str, Any]] = []

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        scope = {
            "type": "http",
            "method": "GET",
            "path": path,
            "headers": [],
            "app": app,
            "query_string": b"",
            "scheme": "http",
            "server": ("127.0.0.1", 80),
        }
        await app(scope, receive, send)
        return sent[0]["status"], json.loads(b"".join(m.get("body", b"") for m in sent[1:]))

    async def main() -> None:
        async with app.router.lifespan_context(app):
            assert (await get("/health"))[0] == 200
            await app.state.mcp.stop("notes")
            status, health = await get("/health")
            assert (status, health["status"]) == (503, "unavailable")
            assert health["servers"]["notes"]["state"] == "stopped"

    asyncio.run(main())
