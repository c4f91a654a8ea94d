"""Transports that tell the worker the moment a server goes away.

The SDK's session exposes no "closed" signal: a server that dies while idle is only noticed by
the next request. A :class:`Link` is that signal. :class:`StdioTransport` runs the server
process itself (the SDK's ``stdio_client`` hides the process, so the exit status, the process
group and stderr would be out of reach); :class:`WatchedTransport` wraps any other transport
and reports the end of its read stream.
"""

from __future__ import annotations

import math
import os
import signal
import subprocess
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager, suppress
from types import TracebackType
from typing import Any, Literal, TypeAlias

import anyio
import mcp_types as types
import trio
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream
from mcp.client._transport import TransportStreams
from mcp.client.stdio import get_default_environment
from mcp.shared.message import SessionMessage

from mcpvisor.specs import StdioSpec
from mcpvisor.specs._logging import library_logger

LostKind: TypeAlias = Literal["exited", "protocol", "closed"]
"""How a link ended: the process exited, the server broke the protocol, or the stream closed."""

_log = library_logger()

MAX_MESSAGE_BYTES = 64 * 1024 * 1024
"""A stdout line longer than this is a protocol violation, not a message to buffer forever."""

STDERR_LINE_CHARS = 2000
"""Longer stderr lines are cut to this many characters before they are logged."""

STDERR_LINES_PER_SECOND = 50
"""More stderr lines than this in one second are counted, not logged."""

_EXIT_STATUS_GRACE = 0.25
"""How long to wait for the exit status (or the last stdout bytes) once the other has arrived."""

_STDERR_DRAIN = 0.2
"""How long teardown waits for the last stderr bytes after the process group is dead."""


def describe_returncode(returncode: int) -> str:
    """``returncode`` as words: ``exited with code 1``, ``killed by SIGKILL``."""
    if returncode >= 0:
        return f"exited with code {returncode}"
    try:
        name = signal.Signals(-returncode).name
    except ValueError:
        name = f"signal {-returncode}"
    return f"killed by {name}"


class Link:
    """Whether a transport is still connected; ``lost`` fires once, when it is not.

    After ``lost``: ``kind`` and ``cause`` say how it ended, and ``returncode`` holds the exit
    status when a process exited on its own (not when teardown killed it).
    """

    def __init__(self) -> None:
        self.lost = trio.Event()
        self.kind: LostKind | None = None
        self.cause: str | None = None
        self.returncode: int | None = None
        self.pid: int | None = None

    def _declare(self, kind: LostKind, cause: str) -> bool:
        if self.lost.is_set():
            return False
        self.kind, self.cause = kind, cause
        self.lost.set()
        return True


class _WatchedReadStream:
    """Relays a transport's read stream, and calls ``on_end`` when it ends."""

    def __init__(self, inner: Any, on_end: Callable[[], None]) -> None:
        self._inner = inner
        self._on_end = on_end

    @property
    def last_context(self) -> Any:
        return getattr(self._inner, "last_context", None)

    async def receive(self) -> SessionMessage | Exception:
        try:
            item: SessionMessage | Exception = await self._inner.receive()
        except (anyio.EndOfStream, anyio.ClosedResourceError, anyio.BrokenResourceError):
            self._on_end()
            raise
        return item

    async def aclose(self) -> None:
        await self._inner.aclose()

    def __aiter__(self) -> _WatchedReadStream:
        return self

    async def __anext__(self) -> SessionMessage | Exception:
        try:
            return await self.receive()
        except anyio.EndOfStream:
            raise StopAsyncIteration from None

    async def __aenter__(self) -> _WatchedReadStream:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc_val: BaseException | None,
        exc_tb: TracebackType | None,
    ) -> None:
        await self.aclose()


class WatchedTransport(Link):
    """Wraps a transport (streamable HTTP, SSE) so that the end of its read stream is seen."""

    def __init__(self, inner: AbstractAsyncContextManager[TransportStreams]) -> None:
        super().__init__()
        self._inner = inner
        self._closing = False

    def _on_end(self) -> None:
        if not self._closing:
            self._declare("closed", "the server closed the connection")

    async def __aenter__(self) -> TransportStreams:
        read, write = await self._inner.__aenter__()
        watched: Any = _WatchedReadStream(read, self._on_end)
        return watched, write

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc_val: BaseException | None,
        exc_tb: TracebackType | None,
    ) -> bool | None:
        self._closing = True
        return await self._inner.__aexit__(exc_type, exc_val, exc_tb)


class _StderrLog:
    """Logs a server's stderr line by line, cut to length and rate limited."""

    def __init__(self, server: str, redact: Callable[[str], str]) -> None:
        self._server = server
        self._redact = redact
        self._window_start = -math.inf
        self._in_window = 0
        self._suppressed = 0

    def line(self, raw: bytes) -> None:
        now = trio.current_time()
        if now - self._window_start >= 1.0:
            self.flush()
            self._window_start, self._in_window = now, 0
        if self._in_window >= STDERR_LINES_PER_SECOND:
            self._suppressed += 1
            return
        self._in_window += 1
        text = raw.decode("utf-8", errors="replace").rstrip("\r")
        truncated = len(text) > STDERR_LINE_CHARS
        _log.info(
            "server.stderr",
            server=self._server,
            line=self._redact(text[:STDERR_LINE_CHARS]),
            **({"truncated": True} if truncated else {}),
        )

    def flush(self) -> None:
        if self._suppressed:
            _log.warning("server.stderr_suppressed", server=self._server, lines=self._suppressed)
            self._suppressed = 0


def _killpg(pgid: int, sig: signal.Signals) -> None:
    with suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def _live_processes() -> dict[int, tuple[int, int]]:
    """``pid -> (parent pid, process group)`` of every live (non-zombie) process.

    Empty where /proc is missing.
    """
    found: dict[int, tuple[int, int]] = {}
    try:
        entries = os.listdir("/proc")
    except OSError:
        return found
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as stat:
                raw = stat.read()
        except OSError:
            continue
        # Fields after the parenthesised command name: state, ppid, pgrp, ...
        fields = raw[raw.rfind(b")") + 2 :].split()
        if len(fields) > 2 and fields[0] != b"Z":
            found[int(entry)] = (int(fields[1]), int(fields[2]))
    return found


def _live_group_members(pgid: int) -> list[int]:
    """Live (non-zombie) processes in process group ``pgid``."""
    return [pid for pid, (_, group) in _live_processes().items() if group == pgid]


def _parents() -> dict[int, int]:
    """Parent pid of every live (non-zombie) process."""
    return {pid: parent for pid, (parent, _) in _live_processes().items()}


def _pin_descendants(root: int) -> list[int]:
    """Pidfds of every live process below ``root``, including any that left its group.

    A server may start helpers in sessions of their own (Node's ``detached: true``, browsers
    that automation servers launch); killing the process group misses them, and once the
    server is dead they are re-parented out of reach. A pidfd names exactly one process, so
    the helpers can be killed later without risking a pid that was reused meanwhile.
    """
    pidfd_open = getattr(os, "pidfd_open", None)
    if pidfd_open is None:  # pragma: no cover - not Linux
        return []
    parents = _parents()
    children: dict[int, list[int]] = {}
    for pid, parent in parents.items():
        children.setdefault(parent, []).append(pid)
    pinned: list[int] = []
    frontier = [root]
    while frontier:
        for pid in children.get(frontier.pop(), []):
            frontier.append(pid)
            try:
                pidfd: int = pidfd_open(pid)
            except OSError:
                continue
            # Opened after /proc was read: keep it only if it is still the same process.
            if _parents().get(pid) == parents[pid]:
                pinned.append(pidfd)
            else:
                os.close(pidfd)
    return pinned


async def _await_group_death(pgid: int, timeout: float) -> None:
    """Wait (bounded) until every process SIGKILLed in group ``pgid`` is dead.

    SIGKILL is delivered asynchronously: a process can still be running for a moment after
    ``killpg`` returns. A pidfd turns readable when its process dies, so this waits on events,
    not on a polling loop.
    """
    pidfd_open = getattr(os, "pidfd_open", None)
    if pidfd_open is None:  # pragma: no cover - not Linux
        return
    deadline = trio.current_time() + timeout
    for pid in _live_group_members(pgid):
        try:
            pidfd: int = pidfd_open(pid)
        except OSError:
            continue
        try:
            with trio.move_on_at(deadline):
                await trio.lowlevel.wait_readable(pidfd)
        finally:
            os.close(pidfd)


class StdioTransport(Link):
    """Runs a server as a child process and speaks newline-delimited JSON-RPC over its pipes.

    The child gets the SDK's safe base environment plus ``spec.env`` and nothing else from the
    host, runs in its own session (so its process group id is its pid), and has its stderr
    captured into structlog (event ``server.stderr``) rather than inherited.

    ``lost`` fires the moment the process exits, closes its stdout, stops reading its stdin,
    or writes something that is not JSON-RPC; the session's read stream is closed just after,
    so pending SDK calls fail at once instead of waiting for a timeout.

    Teardown closes stdin, waits half of ``shutdown`` for the server to exit, sends SIGTERM to
    the process group, waits out the rest, then sends SIGKILL; it always ends by SIGKILLing
    the group and every process that was below the child when teardown began, even one that
    left the group (so no grandchild survives), and reaping the child (so no zombie is left).
    Descendants of a child that had already died are only reached through its group. It is
    shielded from cancellation, and bounded by ``shutdown`` except for the reap after SIGKILL,
    which no process can refuse.
    """

    def __init__(
        self,
        spec: StdioSpec,
        *,
        server: str,
        shutdown_timeout: float,
        redact: Callable[[str], str] = lambda text: text,
    ) -> None:
        super().__init__()
        self._spec = spec
        self._server = server
        self._shutdown_timeout = shutdown_timeout
        self._redact = redact
        self._cm: AbstractAsyncContextManager[TransportStreams] | None = None
        self._closing = False
        self._exited = trio.Event()
        self._stdout_done = trio.Event()
        self._stderr_done = trio.Event()

    async def __aenter__(self) -> TransportStreams:
        self._cm = self._run()
        return await self._cm.__aenter__()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc_val: BaseException | None,
        exc_tb: TracebackType | None,
    ) -> bool | None:
        assert self._cm is not None
        return await self._cm.__aexit__(exc_type, exc_val, exc_tb)

    @asynccontextmanager
    async def _run(self) -> AsyncIterator[TransportStreams]:
        spec = self._spec
        env = get_default_environment() | dict(spec.env)
        # Shielded: a cancel that lands while the spawn thread runs would leak the process.
        with trio.CancelScope(shield=True):
            process = await trio.lowlevel.open_process(
                [spec.command, *spec.args],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env=env,
                cwd=spec.cwd,
                start_new_session=True,
            )
        self.pid = process.pid
        _log.debug("server.spawned", server=self._server, pid=process.pid)
        to_session, from_server = anyio.create_memory_object_stream[SessionMessage | Exception](0)
        to_server, from_session = anyio.create_memory_object_stream[SessionMessage](0)
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._watch_exit, process, to_session)
                nursery.start_soon(self._read_stdout, process, to_session)
                nursery.start_soon(self._write_stdin, process, from_session, to_session)
                nursery.start_soon(self._read_stderr, process)
                try:
                    yield from_server, to_server
                finally:
                    self._closing = True
                    await self._stop(process)
                    nursery.cancel_scope.cancel()
        finally:
            self._closing = True
            with trio.CancelScope(shield=True):
                if process.returncode is None:
                    await self._stop(process)
                for stream in (to_session, from_server, to_server, from_session):
                    stream.close()

    async def _lose(
        self, kind: LostKind, cause: str, to_session: MemoryObjectSendStream[Any]
    ) -> None:
        """Declare the link lost (first caller wins), then end the session's read stream."""
        if self.lost.is_set() or self._closing:
            return
        if kind == "closed" and not self._exited.is_set():
            # An exit status says more than "stdout closed"; it usually follows within ms.
            with trio.move_on_after(_EXIT_STATUS_GRACE):
                await self._exited.wait()
        if self._exited.is_set() and self.returncode is not None and kind == "closed":
            kind, cause = "exited", f"the server process {describe_returncode(self.returncode)}"
        if self._closing or not self._declare(kind, cause):
            return
        _log.debug("server.link_lost", server=self._server, kind=kind, cause=cause)
        to_session.close()

    async def _watch_exit(
        self, process: trio.Process, to_session: MemoryObjectSendStream[Any]
    ) -> None:
        returncode = await process.wait()
        if not self._closing:
            self.returncode = returncode
        self._exited.set()
        # Let the reader deliver what the server wrote before it exited.
        with trio.move_on_after(_EXIT_STATUS_GRACE):
            await self._stdout_done.wait()
        await self._lose(
            "exited", f"the server process {describe_returncode(returncode)}", to_session
        )

    async def _read_stdout(
        self, process: trio.Process, to_session: MemoryObjectSendStream[SessionMessage | Exception]
    ) -> None:
        assert process.stdout is not None
        # A large message arrives in many chunks: only a chunk with a newline ends a line, so
        # the partial line grows in place and is never rejoined or rescanned (that was
        # quadratic, and a 50 MB result took minutes).
        buffer = bytearray()
        try:
            while True:
                try:
                    chunk = await process.stdout.receive_some(65536)
                except (trio.BrokenResourceError, trio.ClosedResourceError):
                    chunk = b""
                if not chunk:
                    self._stdout_done.set()
                    await self._lose("closed", "the server closed its stdout", to_session)
                    return
                lines: list[bytes | bytearray] = []
                if b"\n" in chunk:
                    first, *middle, rest = chunk.split(b"\n")
                    buffer += first
                    lines = [buffer, *middle]
                    buffer = bytearray(rest)
                else:
                    buffer += chunk
                for line in lines:
                    if not line.strip():
                        continue
                    try:
                        message = types.jsonrpc_message_adapter.validate_json(line, by_name=False)
                    except ValueError:
                        await self._lose(
                            "protocol",
                            f"the server wrote {len(line)} bytes to stdout that are not a "
                            "JSON-RPC message",
                            to_session,
                        )
                        return
                    try:
                        await to_session.send(SessionMessage(message))
                    except (anyio.BrokenResourceError, anyio.ClosedResourceError):
                        return
                if len(buffer) > MAX_MESSAGE_BYTES:
                    await self._lose(
                        "protocol",
                        f"the server wrote a stdout line longer than {MAX_MESSAGE_BYTES} bytes",
                        to_session,
                    )
                    return
        finally:
            self._stdout_done.set()

    async def _write_stdin(
        self,
        process: trio.Process,
        from_session: MemoryObjectReceiveStream[SessionMessage],
        to_session: MemoryObjectSendStream[Any],
    ) -> None:
        assert process.stdin is not None
        async with from_session:
            async for session_message in from_session:
                data = session_message.message.model_dump_json(by_alias=True, exclude_unset=True)
                try:
                    await process.stdin.send_all(data.encode() + b"\n")
                except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
                    await self._lose("closed", "the server stopped reading its stdin", to_session)
                    return

    async def _read_stderr(self, process: trio.Process) -> None:
        assert process.stderr is not None
        sink = _StderrLog(self._server, self._redact)
        buffer = b""
        cut = False
        try:
            while True:
                try:
                    chunk = await process.stderr.receive_some(65536)
                except (trio.BrokenResourceError, trio.ClosedResourceError):
                    chunk = b""
                if not chunk:
                    if buffer:
                        sink.line(buffer)
                    return
                *lines, buffer = (buffer + chunk).split(b"\n")
                for line in lines:
                    if not cut:
                        sink.line(line)
                    cut = False
                # A newline-less flood is logged once, cut, and the rest of it dropped.
                if len(buffer) > 4 * STDERR_LINE_CHARS:
                    if not cut:
                        sink.line(buffer)
                    buffer, cut = b"", True
        finally:
            sink.flush()
            self._stderr_done.set()

    async def _stop(self, process: trio.Process) -> None:
        """Stop the process group; see the class docstring. Idempotent."""
        with trio.CancelScope(shield=True):
            start = trio.current_time()
            # Before stdin closes: a child that exits cleanly would orphan its helpers.
            pinned = _pin_descendants(process.pid) if process.returncode is None else []
            try:
                await self._stop_pinned(process, start, pinned)
            finally:
                for pidfd in pinned:
                    os.close(pidfd)

    async def _stop_pinned(self, process: trio.Process, start: float, pinned: list[int]) -> None:
        if process.stdin is not None:
            await trio.aclose_forcefully(process.stdin)
        if process.returncode is None:
            with trio.move_on_at(start + self._shutdown_timeout / 2):
                await process.wait()
        if process.returncode is None:
            _log.debug("server.sigterm", server=self._server, pid=process.pid)
            _killpg(process.pid, signal.SIGTERM)
            # A stopped process cannot act on SIGTERM until it is continued.
            _killpg(process.pid, signal.SIGCONT)
            with trio.move_on_at(start + self._shutdown_timeout):
                await process.wait()
        if process.returncode is None:
            _log.warning("server.sigkill", server=self._server, pid=process.pid)
        # Also reaches grandchildren that outlived a clean exit of the child.
        _killpg(process.pid, signal.SIGKILL)
        for pidfd in pinned:
            with suppress(OSError):
                signal.pidfd_send_signal(pidfd, signal.SIGKILL)
        await process.wait()
        remaining = start + self._shutdown_timeout - trio.current_time()
        deadline = trio.current_time() + max(remaining, 1.0)
        await _await_group_death(process.pid, max(remaining, 1.0))
        for pidfd in pinned:
            with trio.move_on_at(deadline):
                await trio.lowlevel.wait_readable(pidfd)
        with trio.move_on_after(_STDERR_DRAIN):
            await self._stderr_done.wait()
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                await trio.aclose_forcefully(stream)
