"""Starts a daemon the way Chromium's crashpad handler does, then becomes a raw MCP server.

``daemonizing.py PIDDIR [raw_server flags...]`` double-forks a daemon (setsid, stdio on
/dev/null, environment scrubbed, so neither the server's process group nor an environment
marker leads to it) that sleeps for ten minutes, writes ``PIDDIR/server`` and
``PIDDIR/daemon`` with the two pids, and execs ``tests/servers/raw_server.py`` with the flags.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

RAW_SERVER = Path(__file__).parent.parent.parent / "servers" / "raw_server.py"


def daemon(piddir: Path) -> None:
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
    os.execve(sys.executable, [sys.executable, "-c", "import time; time.sleep(600)"], {})


def main() -> None:
    piddir = Path(sys.argv[1])
    first = os.fork()
    if first == 0:
        daemon(piddir)
    os.waitpid(first, 0)
    (piddir / "server").write_text(str(os.getpid()))
    os.execv(sys.executable, [sys.executable, str(RAW_SERVER), *sys.argv[2:]])


if __name__ == "__main__":
    main()
