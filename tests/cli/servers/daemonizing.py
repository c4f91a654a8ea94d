"""Starts a daemon the way Chromium's crashpad handler does, then becomes a raw MCP server.

``daemonizing.py PIDDIR [--daemon-seconds N] [raw_server flags...]`` double-forks a daemon
(setsid, stdio on /dev/null, environment scrubbed, so neither the server's process group nor
an environment marker leads to it) that sleeps N seconds (default 600), writes
``PIDDIR/server`` and ``PIDDIR/daemon`` with the two pids, and execs
``tests/servers/raw_server.py`` with the flags.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

RAW_SERVER = Path(__file__).parent.parent.parent / "servers" / "raw_server.py"


def daemon(piddir: Path, seconds: str) -> None:
    if os.fork() != 0:
        os._exit(0)
    os.setsid()
    if os.fork() != 0:
        os._exit(0)
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    (piddir / "daemon.tmp").write_text(str(os.getpid()))
    (piddir / "daemon.tmp").rename(piddir / "daemon")
    code = f"import time; time.sleep({float(seconds)})"
    os.execve(sys.executable, [sys.executable, "-c", code], {})


def main() -> None:
    piddir, rest = Path(sys.argv[1]), sys.argv[2:]
    seconds = "600"
    if rest[:1] == ["--daemon-seconds"]:
        seconds, rest = rest[1], rest[2:]
    first = os.fork()
    if first == 0:
        daemon(piddir, seconds)
    os.waitpid(first, 0)
    # Written whole, then renamed into place, so a reader never sees an empty file.
    (piddir / "server.tmp").write_text(str(os.getpid()))
    (piddir / "server.tmp").rename(piddir / "server")
    os.execv(sys.executable, [sys.executable, str(RAW_SERVER), *rest])


if __name__ == "__main__":
    main()
