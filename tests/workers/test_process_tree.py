"""Finding a stdio server's descendants: through each thread's children file, or one scan."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from contextlib import suppress

import pytest
import trio

from mcpvisor.workers import process_tree

# A parent that starts one child from its main thread and one from a thread that stays alive,
# each in a session of its own (out of the parent's group), then prints their pids.
PARENT = textwrap.dedent(
    """
    import subprocess, sys, threading, time
    def child():
        return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"],
                                start_new_session=True)
    pids = [child().pid]
    started = threading.Event()
    def from_a_thread():
        pids.append(child().pid)
        started.set()
        time.sleep(120)
    threading.Thread(target=from_a_thread, daemon=True).start()
    started.wait()
    print(*pids, flush=True)
    time.sleep(120)
    """
)


@pytest.fixture
def family() -> Iterator[tuple[subprocess.Popen[bytes], list[int]]]:
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT], stdout=subprocess.PIPE, start_new_session=True
    )
    assert parent.stdout is not None
    children = [int(pid) for pid in parent.stdout.readline().split()]
    try:
        yield parent, children
    finally:
        for pid in (*children, parent.pid):
            with suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        parent.wait()


def _pinned_pids(pidfds: list[int]) -> set[int]:
    pids = set()
    for pidfd in pidfds:
        with open(f"/proc/self/fdinfo/{pidfd}") as info:
            for line in info:
                if line.startswith("Pid:"):
                    pids.add(int(line.split()[1]))
        os.close(pidfd)
    return pids


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="pidfds and /proc are Linux's")
@pytest.mark.parametrize("walk", ["task files", "one scan"])
def test_children_of_every_thread_are_pinned(
    family: tuple[subprocess.Popen[bytes], list[int]], walk: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    if walk == "one scan":  # a kernel without CONFIG_PROC_CHILDREN
        monkeypatch.setattr(process_tree, "_has_children_files", lambda: False)
    elif not process_tree._has_children_files():
        pytest.skip("this kernel does not list each thread's children in /proc")
    parent, children = family
    assert len(children) == 2
    assert _pinned_pids(process_tree.pin_descendants(parent.pid)) == set(children)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="pidfds and /proc are Linux's")
async def test_the_wait_for_a_dead_group_reads_no_process_list(
    family: tuple[subprocess.Popen[bytes], list[int]], monkeypatch: pytest.MonkeyPatch
) -> None:
    parent, children = family
    assert process_tree._group_exists(parent.pid)
    assert process_tree._live_group_members(parent.pid) == [parent.pid]
    parent.kill()
    parent.wait()
    scans: list[int] = []

    def scan() -> dict[int, tuple[int, int]]:
        scans.append(1)
        return {}

    monkeypatch.setattr(process_tree, "_live_processes", scan)
    with trio.fail_after(30):
        await process_tree.await_group_death(parent.pid, 30)
    assert scans == []
    # The children left the group at birth: the group's end says nothing about them.
    assert not process_tree._group_exists(parent.pid)
    assert all(process_tree._stat(pid) is not None for pid in children)
