"""Helpers for the asyncio tests: loops to run under, the recording server, leftovers."""

from __future__ import annotations

import asyncio
import os
import sys
import threading
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

import mcpvisor as mv

T = TypeVar("T")

RECORDING_SERVER = Path(__file__).with_name("recording_server.py")

try:
    import uvloop
except ImportError:  # pragma: no cover - uvloop is a dev dependency where it installs
    uvloop = None

LOOPS = ["asyncio", "uvloop"] if uvloop is not None else ["asyncio"]
RUNNERS = ["thread", "guest"]

FAST = mv.RestartPolicy(max_restarts=50, within=60, backoff=mv.Backoff(initial=0, max=0, jitter=0))
QUIET = mv.Timeouts(probe_interval=None)


def run(main: Coroutine[Any, Any, T], loop: str = "asyncio") -> T:
    """Run ``main`` as an asyncio program: ``asyncio.run`` or ``uvloop.run``."""
    if loop == "uvloop":
        assert uvloop is not None
        return uvloop.run(main)
    return asyncio.run(main)


def recording_spec(record: Path, name: str = "rec", **kw: Any) -> mv.StdioSpec:
    """The recording server, restarted at once after a crash, probes off."""
    kw.setdefault("restart", FAST)
    kw.setdefault("timeouts", QUIET)
    return mv.StdioSpec(
        name=name, command=sys.executable, args=[str(RECORDING_SERVER), str(record)], **kw
    )


def recorded(record: Path) -> list[str]:
    """What the server recorded so far."""
    return record.read_text().splitlines() if record.exists() else []


async def eventually(check: Callable[[], bool], what: str, bound: float = 30.0) -> None:
    """Poll ``check`` until it holds (for facts only a file or a process table shows)."""
    deadline = time.monotonic() + bound
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


def open_fds() -> set[int]:
    """This process's open file descriptors."""
    return {int(fd) for fd in os.listdir("/proc/self/fd")}


def our_threads() -> list[threading.Thread]:
    """Live threads that are not process-wide by design: Trio's idle thread cache, whose
    workers linger for seconds in any Trio program, and mcpvisor's forker threads, which
    must outlive every session so that stdio servers' parent-death signal fires only when
    the host dies (``mcpvisor/workers/spawn.py``). Everything else mcpvisor starts must be
    gone.
    """
    return [
        t
        for t in threading.enumerate()
        if t is not threading.main_thread()
        and not t.name.startswith("Trio thread")
        and t.name != "mcpvisor-forker"
    ]


class Leftovers:
    """Snapshot fds and threads inside the running loop before; check nothing is left after."""

    def __init__(self) -> None:
        self.fds = open_fds()
        self.threads = set(our_threads())

    async def check(self, procs: Any, pids: list[int]) -> None:
        assert [t for t in our_threads() if t not in self.threads] == []
        await eventually(lambda: not any(procs.pid_alive(p) for p in pids), "servers to exit")
        assert open_fds() - self.fds == set()


async def gather_pid(client: Any, server: str = "rec") -> int:
    """The server process's pid, as the server itself reports it."""
    result = await client.call_tool(server, "pid", {})
    return int(result.content[0].text)
