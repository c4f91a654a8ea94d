"""Spawning a stdio server so that it cannot outlive its host, even one that is SIGKILLed.

On Linux the child asks for SIGKILL when its parent dies (``PR_SET_PDEATHSIG``). Linux ties
that to the thread that forked, so the fork happens in one thread that lives as long as the
process (:class:`_Forker`), rather than in one of ``trio.to_thread``'s cached threads as
:func:`trio.lowlevel.open_process` does: those exit after ten idle seconds and would take the
server with them. Not in Trio's own thread either: a fork with a ``preexec_fn`` waits until
the child has exec'd, 10-20 ms of a blocked event loop per server, which starting 50 servers
would pay one after another. Elsewhere, Trio's own spawn is used and only the stdin pipe's end
tells an orphaned server that its host is gone.
"""

from __future__ import annotations

import os
import queue
import subprocess
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

import outcome
import trio

from mcpvisor.workers.process_tree import parent_death_signal


class ChildProcess(Protocol):
    """What the stdio transport needs of a child process (``trio.Process`` has it too)."""

    @property
    def pid(self) -> int: ...

    @property
    def returncode(self) -> int | None: ...

    async def wait(self) -> int: ...


class _PidfdChild:
    """A child spawned with :func:`subprocess.Popen`, awaited through a pidfd."""

    def __init__(
        self, popen: subprocess.Popen[bytes], stdin: int, stdout: int, stderr: int
    ) -> None:
        self._popen = popen
        self._pidfd = os.pidfd_open(popen.pid)
        self._waiting: trio.Event | None = None
        self.stdin: trio.lowlevel.FdStream | None = trio.lowlevel.FdStream(stdin)
        self.stdout: trio.lowlevel.FdStream | None = trio.lowlevel.FdStream(stdout)
        self.stderr: trio.lowlevel.FdStream | None = trio.lowlevel.FdStream(stderr)

    @property
    def pid(self) -> int:
        return self._popen.pid

    @property
    def returncode(self) -> int | None:
        return self._popen.poll()

    async def wait(self) -> int:
        """Wait until the child exits, reap it, and return its status; many tasks may wait."""
        while (code := self._popen.poll()) is None:
            if self._waiting is None:
                # One task waits on the pidfd (trio allows one waiter per fd); others on it.
                self._waiting = trio.Event()
                try:
                    await trio.lowlevel.wait_readable(self._pidfd)
                finally:
                    waiting, self._waiting = self._waiting, None
                    waiting.set()
            else:
                await self._waiting.wait()
        if self._pidfd >= 0:
            os.close(self._pidfd)
            self._pidfd = -1
        return code


class _Forker:
    """The threads that fork stdio servers: started on demand (up to :data:`_FORKERS`, so
    that starting many servers does not wait out each exec in turn), never ending before the
    process does (daemons), so that the children's ``PR_SET_PDEATHSIG`` fires only when the
    host dies."""

    def __init__(self) -> None:
        self._jobs: queue.SimpleQueue[tuple[Callable[[], Any], Callable[[Any], None]]] = (
            queue.SimpleQueue()
        )
        self._lock = threading.Lock()
        self._threads = 0
        self._idle = 0

    def submit(self, job: Callable[[], Any], report: Callable[[Any], None]) -> None:
        with self._lock:
            if self._idle == 0 and self._threads < _FORKERS:
                self._threads += 1
                threading.Thread(target=self._serve, name="mcpvisor-forker", daemon=True).start()
            else:
                self._idle -= 1
        self._jobs.put((job, report))

    def _serve(self) -> None:
        while True:
            job, report = self._jobs.get()
            report(outcome.capture(job))
            with self._lock:
                self._idle += 1

    async def run(self, job: Callable[[], Any]) -> Any:
        """``job()`` in a forker thread. Not cancellable: a child forked while the caller
        was cancelled would have no owner."""
        token = trio.lowlevel.current_trio_token()
        task = trio.lowlevel.current_task()
        self.submit(job, lambda result: token.run_sync_soon(trio.lowlevel.reschedule, task, result))
        return await trio.lowlevel.wait_task_rescheduled(lambda _: trio.lowlevel.Abort.FAILED)


_FORKERS = 4
"""At most this many forker threads; each one waits for its child's exec."""

_FORKER = _Forker()


async def spawn(
    argv: Sequence[str], *, env: Mapping[str, str], cwd: str | None
) -> trio.Process | _PidfdChild:
    """Start ``argv`` in a new session with piped stdin, stdout and stderr (see the module)."""
    preexec = parent_death_signal()
    if preexec is None or not hasattr(os, "pidfd_open"):  # pragma: no cover - not Linux
        with trio.CancelScope(shield=True):
            # Shielded: a cancel that lands while the spawn thread runs would leak the process.
            return await trio.lowlevel.open_process(
                list(argv),
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env=dict(env),
                cwd=cwd,
                start_new_session=True,
            )
    child_in, parent_in = os.pipe()
    parent_out, child_out = os.pipe()
    parent_err, child_err = os.pipe()
    try:
        popen: subprocess.Popen[bytes] = await _FORKER.run(
            lambda: subprocess.Popen(
                list(argv),
                stdin=child_in,
                stdout=child_out,
                stderr=child_err,
                env=dict(env),
                cwd=cwd,
                start_new_session=True,
                preexec_fn=preexec,
            )
        )
    except BaseException:
        for fd in (parent_in, parent_out, parent_err):
            os.close(fd)
        raise
    finally:
        for fd in (child_in, child_out, child_err):
            os.close(fd)
    return _PidfdChild(popen, parent_in, parent_out, parent_err)
