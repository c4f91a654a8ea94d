"""How every CLI command stops: on SIGINT, SIGTERM and SIGHUP, cleanly, leaving nothing behind.

Servers run in their own sessions and process groups, so a signal to the command's process
group (Ctrl-C, a closed terminal, ``timeout``, a cancelled CI job, ``docker stop``) never
reaches them: only the command's own teardown does. :func:`stop_signals` catches the three
signals for the whole life of the supervisor, so a second signal during teardown cannot kill
the command half way; each command decides what a signal means (:class:`SignalPlan`). ``run``
maps SIGHUP to a stop today; once the supervisor can be reconfigured, its plan maps SIGHUP
to a reload instead.

As a last line of defence the command line process makes itself a child subreaper (Linux):
a daemon that a server double-forked is re-parented to it rather than to init, and
:func:`reap_orphans` terminates and reaps whatever is left when the command exits. A server
that survives a SIGKILL of the command itself is the worker's business (its death signal).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from pathlib import Path

import attrs
import trio

STOP_SIGNALS: tuple[signal.Signals, ...] = tuple(
    getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name)
)
"""The signals every command handles: each stops it cleanly unless its plan says otherwise."""

_PR_SET_CHILD_SUBREAPER = 36
_REAP_INTERVAL = 5.0
_subreaper = False


@attrs.define
class Stopped:
    """Which signal stopped the command (None while running, or if it finished by itself)."""

    by: signal.Signals | None = None
    scope: trio.CancelScope = attrs.field(factory=trio.CancelScope)

    @property
    def name(self) -> str | None:
        """The signal's name (``"SIGTERM"``), or None."""
        return None if self.by is None else self.by.name


SignalPlan = Mapping[signal.Signals, Callable[[], Awaitable[None]]]
"""What a signal does instead of stopping the command (``run``'s SIGHUP will reload)."""


@asynccontextmanager
async def stop_signals(plan: SignalPlan | None = None) -> AsyncIterator[Stopped]:
    """Run the block in ``stopped.scope``, which the first stop signal cancels.

    Signals stay caught until the block has finished tearing down, so a repeated Ctrl-C or a
    SIGTERM following a SIGHUP cannot interrupt a teardown that is already under way.
    """
    stopped = Stopped()
    actions = dict(plan or {})
    with trio.open_signal_receiver(*STOP_SIGNALS) as signals:
        async with trio.open_nursery() as nursery:

            async def watch() -> None:
                async for number in signals:
                    sig = signal.Signals(number)
                    action = actions.get(sig)
                    if action is not None and stopped.by is None:
                        await action()
                    elif stopped.by is None:
                        stopped.by = sig
                        stopped.scope.cancel()

            nursery.start_soon(watch)
            if _subreaper:
                nursery.start_soon(_reap_adopted_periodically)
            with stopped.scope:
                yield stopped
            nursery.cancel_scope.cancel()


class Interrupted(Exception):
    """A one-shot command was stopped by ``signal`` before it finished (exit 128 + signal)."""

    def __init__(self, sig: signal.Signals) -> None:
        self.signal = sig
        self.exit_code = 128 + int(sig)
        super().__init__(f"interrupted by {sig.name}; all servers shut down")


def become_subreaper() -> bool:
    """Make this process adopt orphaned descendants (Linux); False where it cannot."""
    global _subreaper
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        _subreaper = bool(libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0)
    except (OSError, AttributeError):
        _subreaper = False
    return _subreaper


def _child_stats(pid: int) -> list[tuple[int, str, int]]:
    """``(pid, state letter, session id)`` of every child of ``pid``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            raw = (entry / "stat").read_text()
        except OSError:
            continue
        fields = raw[raw.rindex(")") + 2 :].split()
        if int(fields[1]) == pid:
            found.append((int(entry.name), fields[0], int(fields[3])))
    return found


def _children(pid: int) -> list[int]:
    return [child for child, _, _ in _child_stats(pid)]


def reap_adopted_zombies() -> list[int]:
    """Reap the exited children that are not session leaders; return their pids.

    Those are adopted orphans (a double-forked daemon is never a session leader, by design):
    left unreaped they would sit in the process table until the command exits. Every child
    this process spawns itself (each server, the demo's HTTP server) leads its own session,
    so their exit statuses are left for the code that awaits them.
    """
    reaped = []
    for pid, state, session in _child_stats(os.getpid()):
        if state == "Z" and session != pid:
            with contextlib.suppress(ChildProcessError):
                if os.waitpid(pid, os.WNOHANG)[0] == pid:
                    reaped.append(pid)
    return reaped


async def _reap_adopted_periodically() -> None:
    while True:
        await trio.sleep(_REAP_INTERVAL)
        await trio.to_thread.run_sync(reap_adopted_zombies)


def _reap_zombies() -> None:
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def reap_orphans(grace: float = 1.0, rounds: int = 20) -> list[int]:
    """Terminate, then kill, and reap every child this process still has; return their pids.

    Called when the command is done, when every server it started has been reaped, so what
    is left are adopted orphans: daemons that escaped their server's process group and
    session. Each round handles the orphans the previous round's kills re-parented here.
    """
    if not Path("/proc/self/stat").exists():
        return []
    me = os.getpid()
    handled: list[int] = []
    for _ in range(rounds):
        _reap_zombies()
        children = _children(me)
        if not children:
            break
        handled += children
        for sig in (signal.SIGTERM, signal.SIGKILL):
            for pid in children:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, sig)
            deadline = time.monotonic() + grace
            while time.monotonic() < deadline:
                _reap_zombies()
                if not [p for p in children if p in _children(me)]:
                    break
                time.sleep(0.02)
    _reap_zombies()
    return handled
