"""Shared fixtures: paths to the test servers, and a check that no test leaks a process.

At session start the pytest process makes itself a child subreaper (Linux), so a grandchild
orphaned by a dead server is re-parented to pytest rather than to init and stays visible as
a descendant. At session end, any live descendant fails the run, named with the test after
which it was first seen alive: under pytest-xdist each worker process is its own session and
checks only its own descendants, and the failure lands on whichever test that worker ran
last, so the name is what points at the test that leaked it.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import hypothesis
import pytest

SERVERS = Path(__file__).parent / "servers"
RAW_SERVER = SERVERS / "raw_server.py"
MCP_SERVER = SERVERS / "mcp_server.py"

_PR_SET_CHILD_SUBREAPER = 36
_LEAK_GRACE = 2.0
"""Seconds a just-killed process may take to disappear before it counts as leaked."""


def _become_subreaper() -> bool:
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return bool(libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0)
    except (OSError, AttributeError):
        return False


def _proc_stat(pid: int) -> tuple[int, str] | None:
    """(parent pid, state letter) of ``pid``, or None if it is gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name is parenthesised and may contain spaces; fields follow the last ")".
    fields = raw[raw.rindex(")") + 2 :].split()
    return int(fields[1]), fields[0]


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
    except OSError:
        return "?"


def descendants(root: int) -> dict[int, str]:
    """Every process below ``root`` in the process tree, with its state letter."""
    parents: dict[int, tuple[int, str]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (stat := _proc_stat(int(entry))) is not None:
            parents[int(entry)] = stat
    found: dict[int, str] = {}
    frontier = [root]
    while frontier:
        parent = frontier.pop()
        for pid, (ppid, state) in parents.items():
            if ppid == parent and pid not in found:
                found[pid] = state
                frontier.append(pid)
    return found


def _reap_zombie_children() -> None:
    """Reap dead children: orphans re-parented to us are nobody else's to wait for."""
    me = os.getpid()
    for pid, state in descendants(me).items():
        stat = _proc_stat(pid)
        if state == "Z" and stat is not None and stat[0] == me:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, os.WNOHANG)


def _live_pids() -> set[int]:
    """Live descendants without reaping: a test's own ``Popen`` or Trio process may still
    be about to wait for a child that has just exited."""
    return {pid for pid, state in descendants(os.getpid()).items() if state != "Z"}


def live_descendants() -> dict[int, str]:
    """Live (non-zombie) descendants of this process, pid to command line."""
    _reap_zombie_children()
    return {pid: _cmdline(pid) for pid, state in descendants(os.getpid()).items() if state != "Z"}


def pid_alive(pid: int) -> bool:
    """Whether ``pid`` is a live process (a zombie is dead: it only awaits reaping)."""
    stat = _proc_stat(pid)
    return stat is not None and stat[1] != "Z"


def pid_gone(pid: int) -> bool:
    """Whether ``pid`` has exited and been reaped (not even a zombie remains)."""
    return _proc_stat(pid) is None


_PROPERTY_TEST_TIMEOUT = 480
"""Seconds a hypothesis test may run: hypothesis gives up shrinking a failure after 300 s, so
this lets it report the example, where the suite's 120 s would end the test first."""


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Give every hypothesis test (``@given`` or a state machine's ``TestCase``) without a
    timeout of its own the longer :data:`_PROPERTY_TEST_TIMEOUT`."""
    for item in items:
        if item.get_closest_marker("timeout") is None and _is_property_test(item):
            item.add_marker(pytest.mark.timeout(_PROPERTY_TEST_TIMEOUT))


def _is_property_test(item: pytest.Item) -> bool:
    if getattr(getattr(item, "obj", None), "is_hypothesis_test", False):
        return True
    return isinstance(getattr(getattr(item, "cls", None), "settings", None), hypothesis.settings)


_first_seen: dict[int, str] = {}
"""pid -> the test after which that process was first seen alive, for the leak report."""


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_teardown(item: pytest.Item) -> None:
    """Before the test's fixtures are torn down (the session's own check among them, after
    the last test), note every live descendant not already seen."""
    for pid in _live_pids():
        _first_seen.setdefault(pid, item.nodeid)


@pytest.fixture(scope="session", autouse=True)
def no_leaked_processes() -> Iterator[None]:
    """Fails the run if any process started during it is still alive at the end."""
    _become_subreaper()
    before = set(live_descendants())
    _first_seen.clear()
    yield
    deadline = time.monotonic() + _LEAK_GRACE
    leaked = {p: c for p, c in live_descendants().items() if p not in before}
    while leaked and time.monotonic() < deadline:
        time.sleep(0.05)
        leaked = {p: c for p, c in live_descendants().items() if p not in before}
    for pid in leaked:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    if leaked:
        listing = "\n".join(
            f"  {pid}: {cmd} (first seen alive after {_first_seen.get(pid, 'the last test')})"
            for pid, cmd in sorted(leaked.items())
        )
        pytest.fail(f"{len(leaked)} process(es) outlived the test run:\n{listing}")


class ProcessTree:
    """Process-tree checks for tests, through the ``procs`` fixture."""

    live_descendants = staticmethod(live_descendants)
    pid_alive = staticmethod(pid_alive)
    pid_gone = staticmethod(pid_gone)


@pytest.fixture
def procs() -> type[ProcessTree]:
    """``procs.live_descendants()``, ``procs.pid_alive(pid)``, ``procs.pid_gone(pid)``."""
    return ProcessTree


@pytest.fixture
def raw_server() -> Path:
    """The raw JSON-RPC stdio server script (no ``mcp`` import; starts fast)."""
    return RAW_SERVER


@pytest.fixture
def mcp_server() -> Path:
    """The ``MCPServer``-based server script (stdio, streamable HTTP or SSE)."""
    return MCP_SERVER
