"""Spawning a stdio server so that it cannot outlive its host, even one that is SIGKILLed.

On Linux the child asks for SIGKILL when its parent dies (``PR_SET_PDEATHSIG``). Linux ties
that to the thread that forked, so the fork happens here, in Trio's own thread, rather than in
one of ``trio.to_thread``'s cached threads as :func:`trio.lowlevel.open_process` does: those
exit after ten idle seconds and would take the server with them. The fork blocks the event
loop for the few milliseconds fork and exec take. Elsewhere, Trio's own spawn is used and
only the stdin pipe's end tells an orphaned server that its host is gone.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping, Sequence
from typing import Protocol

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
        popen = subprocess.Popen(  # noqa: ASYNC220 - the fork must happen in this thread
            list(argv),
            stdin=child_in,
            stdout=child_out,
            stderr=child_err,
            env=dict(env),
            cwd=cwd,
            start_new_session=True,
            preexec_fn=preexec,
        )
    except BaseException:
        for fd in (parent_in, parent_out, parent_err):
            os.close(fd)
        raise
    finally:
        for fd in (child_in, child_out, child_err):
            os.close(fd)
    # Yield without letting a cancel land here: the child exists, and only the returned
    # handle lets the transport's teardown reach it.
    await trio.lowlevel.cancel_shielded_checkpoint()
    return _PidfdChild(popen, parent_in, parent_out, parent_err)
