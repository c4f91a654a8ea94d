"""Finding a stdio server's descendants: through each thread's children file, or one scan."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
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
    assert process_tree.group_exists(parent.pid)
    assert process_tree._live_group_members(parent.pid) == [parent.pid]
    parent.kill()
    parent.wait()
    scans: list[int] = []

    def scan() -> dict[int, tuple[bytes, int, int]]:
        scans.append(1)
        return {}

    monkeypatch.setattr(process_tree, "_scan", scan)
    with trio.fail_after(30):
        await process_tree.await_group_death(parent.pid, 30)
    assert scans == []
    # The children left the group at birth: the group's end says nothing about them.
    assert not process_tree.group_exists(parent.pid)
    assert all(process_tree._stat(pid) is not None for pid in children)


@pytest.fixture
def sleeper() -> Iterator[int]:
    """A live process with no children."""
    process = subprocess.Popen(["sleep", "120"])
    try:
        yield process.pid
    finally:
        process.kill()
        process.wait()


def _gone_pid() -> int:
    process = subprocess.Popen(["true"])
    process.wait()
    return process.pid


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="pidfds and /proc are Linux's")
def test_a_listed_pid_that_is_not_a_child_is_not_walked(
    family: tuple[subprocess.Popen[bytes], list[int]],
    sleeper: int,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A child that left after its parent's list was read, its pid taken by an unrelated
    # process: that process is no descendant, and neither are its children.
    unrelated, its_children = family
    listed = process_tree._children_from_task_files
    monkeypatch.setattr(process_tree, "_has_children_files", lambda: True)
    monkeypatch.setattr(
        process_tree,
        "_children_from_task_files",
        lambda pid: [unrelated.pid] if pid == sleeper else listed(pid),
    )
    assert _pinned_pids(process_tree.pin_descendants(sleeper)) == set()
    assert all(process_tree._stat(pid) is not None for pid in its_children)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="pidfds and /proc are Linux's")
def test_a_children_file_that_skipped_a_child_is_checked_against_a_scan(
    family: tuple[subprocess.Popen[bytes], list[int]], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The kernel may skip an entry when another child leaves during the read: what such a read
    # looks like is a child that is gone and a live one missing.
    parent, children = family
    gone = _gone_pid()
    listed = process_tree._children_from_task_files
    monkeypatch.setattr(process_tree, "_has_children_files", lambda: True)
    monkeypatch.setattr(
        process_tree,
        "_children_from_task_files",
        lambda pid: [gone, children[0]] if pid == parent.pid else listed(pid),
    )
    assert _pinned_pids(process_tree.pin_descendants(parent.pid)) == set(children)


# A process whose first thread exited while another thread runs shows as a zombie in
# /proc/<pid>/stat; it and the child it started are still below the server.
HALF_EXITED = textwrap.dedent(
    """
    import ctypes, os, subprocess, sys, threading, time
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"],
                             start_new_session=True)
    print(os.getpid(), child.pid, flush=True)
    threading.Thread(target=time.sleep, args=(120,)).start()
    ctypes.CDLL(None, use_errno=True).syscall({sys_exit}, 0)  # exits this thread only
    """
)
_SYS_EXIT = {"x86_64": 60, "aarch64": 93}.get(os.uname().machine)


@pytest.mark.skipif(
    not sys.platform.startswith("linux") or _SYS_EXIT is None,
    reason="needs Linux's exit syscall number for this machine",
)
@pytest.mark.parametrize("walk", ["task files", "one scan"])
def test_a_process_whose_first_thread_exited_is_pinned_with_its_child(
    walk: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    if walk == "one scan":
        monkeypatch.setattr(process_tree, "_has_children_files", lambda: False)
    elif not process_tree._has_children_files():
        pytest.skip("this kernel does not list each thread's children in /proc")
    script = HALF_EXITED.format(sys_exit=_SYS_EXIT)
    launcher = (
        "import subprocess, sys\n"
        f"p = subprocess.Popen([sys.executable, '-c', {script!r}], start_new_session=True)\n"
        "p.wait()\n"
    )
    root = subprocess.Popen([sys.executable, "-c", launcher], stdout=subprocess.PIPE)
    assert root.stdout is not None
    half, child = (int(pid) for pid in root.stdout.readline().split())
    try:
        deadline = time.monotonic() + 30
        state = process_tree._stat(half)
        while state is not None and state[0] != b"Z":  # until its first thread is gone
            assert time.monotonic() < deadline, state
            state = process_tree._stat(half)
        assert state is not None
        assert _pinned_pids(process_tree.pin_descendants(root.pid)) == {half, child}
    finally:
        for pid in (child, half, root.pid):
            with suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        root.wait()
