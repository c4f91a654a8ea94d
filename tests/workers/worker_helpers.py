"""Helpers for worker tests: run a worker in a nursery and talk to it through envelopes.

Imported by the test modules beside it (pytest puts this directory on ``sys.path``).
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import attrs
import httpx2
import trio

from mcpvisor.specs import ServerSpec, StdioSpec, Timeouts
from mcpvisor.workers import Envelope, Operation, Ready, WorkerExit, run_worker

FAST = Timeouts(connect=10, initialize=20, request=20, shutdown=2, probe_interval=None)
"""Real-time bounds for tests: generous for a loaded CI box, no background probes."""


@attrs.define
class Running:
    """A worker running in a test's nursery."""

    send: trio.MemorySendChannel[Envelope]
    ready: Ready | None = None
    exited: trio.Event = attrs.field(factory=trio.Event)
    exit: WorkerExit | None = None

    def submit(self, op: str, progress: Any = None, **args: Any) -> Envelope:
        """Queue a request without waiting for it."""
        if progress is not None:
            args["progress"] = progress
        envelope = Envelope(Operation.from_args({"op": op, **args}))
        self.send.send_nowait(envelope)
        return envelope

    async def call(self, op: str, **args: Any) -> Any:
        """Send a request and return its result (or raise its error), within 60 s."""
        with trio.fail_after(60):
            return await self.submit(op, **args).reply.wait()

    async def wait_exit(self) -> WorkerExit:
        """Wait (at most 60 s) until the worker has returned."""
        with trio.fail_after(60):
            await self.exited.wait()
        assert self.exit is not None
        return self.exit

    @property
    def pid(self) -> int:
        assert self.ready is not None and self.ready.pid is not None
        return self.ready.pid


@asynccontextmanager
async def running(spec: ServerSpec, **kwargs: Any) -> AsyncIterator[Running]:
    """Start a worker for ``spec``; on exit, close its channel (stop it) and wait for it."""
    send, receive = trio.open_memory_channel[Envelope](1000)
    worker = Running(send)

    async def run(task_status: trio.TaskStatus[Ready]) -> None:
        worker.exit = await run_worker(spec, receive, task_status=task_status, **kwargs)
        worker.exited.set()

    async with trio.open_nursery() as nursery:
        worker.ready = await nursery.start(run)
        try:
            yield worker
        finally:
            send.close()


def raw_spec(script: Path, *flags: str, **kwargs: Any) -> StdioSpec:
    """A spec that runs the raw JSON-RPC test server with ``flags``."""
    kwargs.setdefault("timeouts", FAST)
    return StdioSpec(name="raw", command=sys.executable, args=(str(script), *flags), **kwargs)


@asynccontextmanager
async def http_server(script: Path, transport: str, port: int = 0) -> AsyncIterator[HttpServer]:
    """Run the ``MCPServer`` test server over HTTP in a subprocess; kill it on exit."""
    server = HttpServer(script, transport)
    await server.start(port)
    try:
        yield server
    finally:
        await server.kill()


@asynccontextmanager
async def raw_http_server(script: Path, *flags: str) -> AsyncIterator[HttpServer]:
    """Run ``raw_http_server.py`` with ``flags``; kill it on exit."""
    server = HttpServer(script, "streamable-http", flags=flags)
    await server.start()
    try:
        yield server
    finally:
        await server.kill()


@attrs.define
class HttpServer:
    script: Path
    transport: str
    port: int = 0
    process: trio.Process | None = None
    flags: tuple[str, ...] | None = None
    """Set for ``raw_http_server.py``, which takes no transport or port."""

    async def count(self, method: str) -> int:
        """How many ``method`` requests ``raw_http_server.py`` has received."""
        async with httpx2.AsyncClient() as http:
            response = await http.get(f"http://127.0.0.1:{self.port}/stats")
            counts: dict[str, int] = response.json()
            return counts.get(method, 0)

    async def control(self, mode: str) -> None:
        """Switch ``raw_http_server.py`` to answer in ``mode``."""
        async with httpx2.AsyncClient() as http:
            response = await http.post(
                f"http://127.0.0.1:{self.port}/control", content=json.dumps({"mode": mode})
            )
            response.raise_for_status()

    @property
    def url(self) -> str:
        path = "/mcp" if self.transport == "streamable-http" else "/sse"
        return f"http://127.0.0.1:{self.port}{path}"

    async def start(self, port: int = 0) -> None:
        args = ["--transport", self.transport, "--port", str(port)]
        if self.flags is not None:
            args = list(self.flags)
        self.process = await trio.lowlevel.open_process(
            [sys.executable, str(self.script), *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        assert self.process.stdout is not None
        buffer = b""
        while b"\n" not in buffer:
            chunk = await self.process.stdout.receive_some()
            assert chunk, "the HTTP test server exited before printing its port"
            buffer += chunk
        self.port = int(buffer.split()[1])

    async def kill(self) -> None:
        if self.process is not None:
            with trio.CancelScope(shield=True):
                self.process.kill()
                await self.process.wait()
                if self.process.stdout is not None:
                    await self.process.stdout.aclose()
