"""Finding and killing every process a stdio server left behind, without touching others.

A stdio server's processes are reached three ways at teardown:

- its process group (the child runs in a session of its own, so the group id is its pid);
- every process below it in the process tree, found recursively and pinned by pidfd before
  stdin closes (helpers that left the group: Node's ``detached: true``, launched browsers);
- every process whose environment carries the session's token (:data:`SESSION_TOKEN_VAR`),
  which finds daemons that double-forked and called ``setsid`` (a crashpad handler), since
  they were re-parented out of the tree.

What none of these reaches: a daemon that left the tree *and* scrubbed or replaced its
environment at exec (``env -i``, ``execve`` with a new environment), or one that runs as
another user. Only a child subreaper (the CLI can be one) or a cgroup can contain those.
Everything here reads /proc, so on systems without it only the process group is reached.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import os
import secrets
import signal
import sys
from collections.abc import Callable
from contextlib import suppress

import trio

SESSION_TOKEN_VAR = "MCPVISOR_SESSION"
"""Environment variable set in every stdio child to a token unique to its session."""


def new_session_token() -> str:
    """A fresh token for :data:`SESSION_TOKEN_VAR`."""
    return secrets.token_hex(12)


def pin_marked(token: str) -> list[int]:
    """Pidfds of every live process whose environment carries ``token`` (see the module)."""
    pidfd_open = getattr(os, "pidfd_open", None)
    if pidfd_open is None:  # pragma: no cover - not Linux
        return []
    mark = f"{SESSION_TOKEN_VAR}={token}".encode()
    pinned: list[int] = []
    for pid in _marked(mark):
        try:
            pidfd: int = pidfd_open(pid)
        except OSError:
            continue
        # Opened after the scan: keep it only if that pid still names a marked process.
        if pid in _marked(mark, only=(pid,)):
            pinned.append(pidfd)
        else:
            os.close(pidfd)
    return pinned


def _marked(mark: bytes, only: tuple[int, ...] | None = None) -> list[int]:
    found: list[int] = []
    me = os.getpid()
    try:
        pids = only or tuple(int(entry) for entry in os.listdir("/proc") if entry.isdigit())
    except OSError:
        return found
    for pid in pids:
        if pid == me:
            continue
        try:
            with open(f"/proc/{pid}/environ", "rb") as environ:
                entries = environ.read().split(b"\0")
        except OSError:
            continue
        if mark in entries:
            found.append(pid)
    return found


_PR_SET_PDEATHSIG = 1


@functools.cache
def _prctl() -> Callable[..., int] | None:
    """libc's ``prctl`` on Linux, else None. Found once: ``find_library`` runs ``ldconfig -p``
    in a subprocess, synchronously, which every spawn would otherwise wait for."""
    if not sys.platform.startswith("linux"):
        return None
    path = ctypes.util.find_library("c")
    if path is None:  # pragma: no cover - a Linux without a findable libc
        return None
    prctl: Callable[..., int] = ctypes.CDLL(path, use_errno=True).prctl
    return prctl


def parent_death_signal() -> Callable[[], None] | None:
    """A ``preexec_fn`` that asks Linux to SIGKILL the child when its parent dies; else None.

    Linux sends it when the *thread* that forked the child exits, not the process, so the
    spawn must happen in a thread that lives as long as the session: Trio's own thread (the
    asyncio facade runs Trio in a thread of its own that lives until shutdown), never one of
    ``trio.to_thread``'s cached threads, which exit after ten idle seconds.
    """
    prctl = _prctl()
    if prctl is None:
        return None
    parent = os.getpid()

    def set_pdeathsig() -> None:
        prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
        # The parent may have died between fork and prctl: then nobody would send it.
        if os.getppid() != parent:
            os._exit(1)

    return set_pdeathsig


def killpg(pgid: int, sig: signal.Signals) -> None:
    with suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def _stat(pid: int | str) -> tuple[bytes, int, int] | None:
    """``(state, parent pid, process group)`` of one process, else None (it is gone)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            raw = stat.read()
    except OSError:
        return None
    # Fields after the parenthesised command name: state, ppid, pgrp, ...
    fields = raw[raw.rfind(b")") + 2 :].split()
    if len(fields) < 3:
        return None
    return fields[0], int(fields[1]), int(fields[2])


def _scan() -> dict[int, tuple[bytes, int, int]]:
    """``pid -> (state, parent pid, process group)`` of every process, zombies included.

    Empty where /proc is missing. It reads every process's ``stat``, which the kernel
    assembles on each read (~25 us a process on a small VM), so callers avoid it where a
    narrower question has an answer.
    """
    found: dict[int, tuple[bytes, int, int]] = {}
    try:
        entries = os.listdir("/proc")
    except OSError:
        return found
    for entry in entries:
        if entry.isdigit():
            stat = _stat(entry)
            if stat is not None:
                found[int(entry)] = stat
    return found


def _live_group_members(pgid: int) -> list[int]:
    """Live (non-zombie) processes in process group ``pgid``."""
    return [pid for pid, (state, _, group) in _scan().items() if group == pgid and state != b"Z"]


def group_exists(pgid: int) -> bool:
    """Whether any process (a zombie included) is still in group ``pgid``: one syscall."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # its members belong to another user, but they exist
    return True


@functools.cache
def _has_children_files() -> bool:
    """Whether the kernel lists each thread's children in /proc (``CONFIG_PROC_CHILDREN``)."""
    me = os.getpid()
    return os.path.exists(f"/proc/{me}/task/{me}/children")


def _children_from_task_files(pid: int) -> list[int]:
    """Children of ``pid``, from the ``children`` file of each of its threads."""
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return []
    found: list[int] = []
    for task in tasks:
        try:
            with open(f"/proc/{pid}/task/{task}/children", "rb") as children:
                found.extend(int(child) for child in children.read().split())
        except OSError:
            continue
    return found


def _children_from_a_scan() -> Callable[[int], list[int]]:
    """Children by parent, from one scan of every process (kernels without the files)."""
    children: dict[int, list[int]] = {}
    for pid, (_, parent, _) in _scan().items():
        children.setdefault(parent, []).append(pid)
    return lambda pid: children.get(pid, [])


def pin_descendants(root: int) -> list[int]:
    """Pidfds of the processes below ``root``, including any that left its group.

    A server may start helpers in sessions of their own (Node's ``detached: true``, browsers
    that automation servers launch); killing the process group misses them, and once the
    server is dead they are re-parented out of reach. A pidfd names exactly one process, so
    the helpers can be killed later without risking a pid that was reused meanwhile.

    The tree is walked through each process's ``/proc/<pid>/task/<tid>/children`` where the
    kernel has them, so the work grows with the server's own tree, not with every process on
    the host; else from one scan of them all. The kernel may skip an entry of a children file
    when another child leaves while it is read, so a parent whose listed children did not all
    check out is looked up in a scan as well. Best effort, like any walk of /proc: a process
    that forks as it is walked may finish its fork after the walk.
    """
    pidfd_open = getattr(os, "pidfd_open", None)
    if pidfd_open is None:  # pragma: no cover - not Linux
        return []
    scanned = None if _has_children_files() else _children_from_a_scan()
    pinned: list[int] = []
    seen = {root}
    frontier = [root]

    def take(parent: int, listed: list[int]) -> bool:
        """Pin and walk ``parent``'s children not seen yet; say whether any had left."""
        departed = False
        for pid in listed:
            if pid not in seen:
                seen.add(pid)
                if _pin_child(pidfd_open, pid, parent, pinned):
                    frontier.append(pid)
                else:
                    departed = True
        return departed

    while frontier:
        parent = frontier.pop()
        if scanned is not None:
            take(parent, scanned(parent))
        elif take(parent, _children_from_task_files(parent)):
            scanned = _children_from_a_scan()
            take(parent, scanned(parent))
    return pinned


def _pin_child(pidfd_open: Callable[[int], int], pid: int, parent: int, pinned: list[int]) -> bool:
    """Pin ``pid`` if it is still ``parent``'s child; say whether it was."""
    try:
        pidfd = pidfd_open(pid)
    except OSError:
        return False
    # Opened after /proc was read: keep it only if it is still the same process. A zombie is
    # kept too: a process whose first thread exited shows as one while its other threads run.
    stat = _stat(pid)
    if stat is not None and stat[1] == parent:
        pinned.append(pidfd)
        return True
    os.close(pidfd)
    return False


async def await_group_death(pgid: int, timeout: float) -> None:
    """Wait (bounded) until every process SIGKILLed in group ``pgid`` is dead.

    SIGKILL is delivered asynchronously: a process can still be running for a moment after
    ``killpg`` returns. A pidfd turns readable when its process dies, so this waits on events,
    not on a polling loop.
    """
    pidfd_open = getattr(os, "pidfd_open", None)
    if pidfd_open is None:  # pragma: no cover - not Linux
        return
    deadline = trio.current_time() + timeout
    # Usually the group is already empty, and one syscall says so; a scan reads all of /proc.
    if not group_exists(pgid):
        return
    for pid in await trio.to_thread.run_sync(_live_group_members, pgid):
        try:
            pidfd: int = pidfd_open(pid)
        except OSError:
            continue
        try:
            with trio.move_on_at(deadline):
                await trio.lowlevel.wait_readable(pidfd)
        finally:
            os.close(pidfd)
