"""Spawning a stdio server so that it cannot outlive its host, even one that is SIGKILLed.

On Linux the child asks for SIGKILL when its parent dies (``PR_SET_PDEATHSIG``). Linux ties
that to the *thread* that forked, so every spawn happens in one of up to four "forker"
threads (:class:`_Forker`) that live as long as the process, never in one of
``trio.to_thread``'s cached threads (as :func:`trio.lowlevel.open_process` does), which exit
after ten idle seconds and would take the server with them. Not in Trio's own thread
either: the spawn returns only once the child has exec'd, which on a busy machine (50 servers
starting at once) takes milliseconds of CPU scheduling per child; in forker threads those
waits overlap and the event loop keeps running.

Two ways to set the signal, fastest first:

- **util-linux's** ``setpriv --pdeathsig KILL`` (on every mainstream distribution) execs the
  server after setting it. The spawn then needs no ``preexec_fn``, so CPython forks with
  ``vfork`` (~0.2 ms) instead of a full ``fork()`` of the host (page tables and copy-on-write
  faults, 2-7 ms, growing with the host's heap), which a ``preexec_fn`` forces. The price is
  one extra exec (~1 ms of the child's time) and a window of well under a millisecond,
  between the fork and ``setpriv``'s ``prctl``, in which a host that dies leaves the server
  to notice its stdin's end.
- **A** ``preexec_fn`` **that calls** ``prctl``, where ``setpriv`` is missing or too old. It
  closes that window (it checks the parent after ``prctl``), at the full fork's price.

Elsewhere, Trio's own spawn is used and only the stdin pipe's end tells an orphaned server
that its host is gone.
"""

from __future__ import annotations

import errno
import functools
import os
import queue
import shutil
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


@functools.cache
def _setpriv() -> str | None:
    """util-linux's ``setpriv`` if it has ``--pdeathsig`` (2.33 and later), else None.

    Looked up once per process: asking it for its options runs it.
    """
    path = shutil.which("setpriv")
    if path is None:
        return None
    try:
        usage = subprocess.run([path, "--help"], capture_output=True, timeout=5, check=False).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return path if b"--pdeathsig" in usage else None


def _resolve(command: str, env: Mapping[str, str], cwd: str | None) -> str:
    """The file the child would exec for ``command``: searched on the child's own ``PATH``,
    relative to its own working directory, with the errors :class:`subprocess.Popen` raises
    (so a missing command stays a spec error rather than a launcher's exit status)."""
    if cwd is not None and not os.path.isdir(cwd):
        return command  # Popen's chdir names the directory in its error
    if os.sep in command:
        candidates = [command]
    else:
        path = env.get("PATH", os.defpath)
        candidates = [os.path.join(entry or os.curdir, command) for entry in path.split(os.pathsep)]
    denied = False
    for candidate in candidates:
        full = os.path.join(cwd, candidate) if cwd is not None else candidate
        if os.path.isfile(full):
            if os.access(full, os.X_OK):
                return os.path.abspath(full)
            denied = True
    code = errno.EACCES if denied else errno.ENOENT
    raise (PermissionError if denied else FileNotFoundError)(code, os.strerror(code), command)


async def spawn(
    argv: Sequence[str], *, env: Mapping[str, str], cwd: str | None
) -> trio.Process | _PidfdChild:
    """Start ``argv`` in a new session with piped stdin, stdout and stderr (see the module)."""
    preexec = parent_death_signal()
    if preexec is None or not hasattr(os, "pidfd_open"):  # pragma: no cover - not Linux
        return await _spawn_elsewhere(argv, env=env, cwd=cwd)
    child_in, parent_in = os.pipe()
    parent_out, child_out = os.pipe()
    parent_err, child_err = os.pipe()
    fds = (child_in, child_out, child_err)
    try:
        popen = await _FORKER.run(functools.partial(_launch, argv, fds, env, cwd, preexec))
    except BaseException:
        for fd in (parent_in, parent_out, parent_err):
            os.close(fd)
        raise
    finally:
        for fd in fds:
            os.close(fd)
    return _PidfdChild(popen, parent_in, parent_out, parent_err)


async def _spawn_elsewhere(
    argv: Sequence[str], *, env: Mapping[str, str], cwd: str | None
) -> trio.Process:  # pragma: no cover - not Linux
    with trio.CancelScope(shield=True):
        # Shielded: a cancel that lands while the spawn thread runs would leak the process.
        process = await trio.lowlevel.open_process(
            list(argv),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=dict(env),
            cwd=cwd,
            start_new_session=True,
        )
    return process


def _launch(
    argv: Sequence[str],
    fds: tuple[int, int, int],
    env: Mapping[str, str],
    cwd: str | None,
    preexec: Callable[[], None],
) -> subprocess.Popen[bytes]:
    """Spawn ``argv`` with its death signal set (see the module); runs in a forker thread,
    where looking for ``setpriv`` and the command on disk blocks no event loop."""
    launcher = _setpriv()
    if launcher is None:
        return _popen(argv, fds, env, cwd, preexec)
    command = _resolve(argv[0], env, cwd)
    return _popen([launcher, "--pdeathsig", "KILL", "--", command, *argv[1:]], fds, env, cwd, None)


def _popen(
    argv: Sequence[str],
    fds: tuple[int, int, int],
    env: Mapping[str, str],
    cwd: str | None,
    preexec: Callable[[], None] | None,
) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        list(argv),
        stdin=fds[0],
        stdout=fds[1],
        stderr=fds[2],
        env=dict(env),
        cwd=cwd,
        start_new_session=True,
        preexec_fn=preexec,
    )
