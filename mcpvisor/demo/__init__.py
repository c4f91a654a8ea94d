"""Small MCP servers that ship with mcpvisor, for ``mcpvisor demo``, the examples and tests.

Each runs from the installed package as ``python -m mcpvisor.demo.<name>``:

- ``notes``: a healthy stdio server (``echo``, ``add``, ``word_count``).
- ``flaky``: a stdio server whose ``lookup`` kills the process every K-th call.
- ``weather``: a streamable-HTTP server (``forecast``), started with :func:`open_http_server`.
- ``broken``: a stdio "server" that exits before speaking MCP, so it never starts.

:func:`demo_spec` puts all four under supervision with budgets that suit a short demo.
"""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import attrs
import trio

from mcpvisor.specs import Backoff, HttpSpec, RestartPolicy, StdioSpec, SupervisorSpec, Timeouts

SERVERS = ("notes", "flaky", "weather", "broken")
"""The bundled servers, by module name."""


def stdio_spec(name: str, module: str | None = None, *args: str, **supervision: Any) -> StdioSpec:
    """A :class:`StdioSpec` running bundled server ``module`` (default ``name``) with ``args``.

    The command is this interpreter (``sys.executable -m mcpvisor.demo.<module>``), so the
    server runs from the same environment as the caller. ``supervision`` passes through to
    the spec (``restart=``, ``required=``, ``timeouts=``...).
    """
    return StdioSpec(
        name=name,
        command=sys.executable,
        args=("-m", f"mcpvisor.demo.{module or name}", *args),
        **supervision,
    )


def broken_spec(name: str = "broken", **supervision: Any) -> StdioSpec:
    """A :class:`StdioSpec` for the ``broken`` server, which exits before speaking MCP.

    It runs ``broken.py`` by path rather than with ``-m`` so that no package (and no MCP
    SDK) is imported: each failed attempt takes milliseconds, not the second an import costs.
    """
    path = str(Path(__file__).with_name("broken.py"))
    return StdioSpec(name=name, command=sys.executable, args=(path,), **supervision)


@attrs.frozen
class HttpServer:
    """A bundled HTTP server running as a child process: its MCP ``url`` and ``pid``."""

    url: str
    pid: int


@asynccontextmanager
async def open_http_server(
    module: str = "weather", *, stderr: int | None = None
) -> AsyncIterator[HttpServer]:
    """Run a bundled streamable-HTTP server on 127.0.0.1 (an ephemeral port) for the block.

    The listening socket is bound here and inherited by the child, so the URL is valid as
    soon as the block starts: connections made before the child is ready wait in the
    backlog. Leaving the block terminates the child (and kills it if it lingers). The child
    exits by itself when the pipe on its stdin closes, which happens however this process
    dies, so not even a SIGKILL here leaves it running. ``stderr=subprocess.DEVNULL``
    silences it.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.bind(("127.0.0.1", 0))
        sock.listen(64)
        port = sock.getsockname()[1]
        fd = sock.fileno()
        process = await trio.lowlevel.open_process(
            [sys.executable, "-m", f"mcpvisor.demo.{module}", "--fd", str(fd), "--exit-with-stdin"],
            pass_fds=(fd,),
            stdin=subprocess.PIPE,
            stderr=stderr,
            start_new_session=True,
        )
    finally:
        sock.close()
    try:
        yield HttpServer(url=f"http://127.0.0.1:{port}/mcp", pid=process.pid)
    finally:
        with trio.CancelScope(shield=True):
            if process.stdin is not None:
                await process.stdin.aclose()
            if process.returncode is None:
                process.terminate()
                with trio.move_on_after(3):
                    await process.wait()
            if process.returncode is None:
                process.kill()
                await process.wait()


def demo_spec(
    http_url: str, *, crash_after: int = 6, extra: Mapping[str, Any] | None = None
) -> SupervisorSpec:
    """The four bundled servers, supervised the way ``mcpvisor demo`` shows them.

    ``flaky`` crashes on every ``crash_after``-th call and has a generous budget with a
    short backoff, so it keeps coming back; ``broken`` gets two restarts and is then
    DROPPED; ``notes`` is required, the rest optional. ``extra`` passes through to every
    spec (for instance ``timeouts=``).
    """
    common = dict(extra or {})
    common.setdefault("timeouts", Timeouts(connect=10, initialize=30, request=10, shutdown=3))
    return SupervisorSpec(
        servers=[
            stdio_spec("notes", required=True, **common),
            stdio_spec(
                "flaky",
                None,
                "--crash-after",
                str(crash_after),
                restart=RestartPolicy(
                    max_restarts=50,
                    within=60,
                    backoff=Backoff(initial=0.3, max=3.0, multiplier=2.0, jitter=0.5),
                    reset_after=5,
                ),
                **common,
            ),
            HttpSpec(name="weather", url=http_url, **common),
            broken_spec(
                restart=RestartPolicy(
                    max_restarts=2,
                    within=60,
                    backoff=Backoff(initial=0.2, max=1.0, multiplier=2.0, jitter=0.0),
                ),
                **common,
            ),
        ]
    )


__all__ = [
    "SERVERS",
    "HttpServer",
    "broken_spec",
    "demo_spec",
    "open_http_server",
    "stdio_spec",
]
