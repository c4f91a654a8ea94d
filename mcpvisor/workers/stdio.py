"""The stdio transport: the server as a child process, newline-delimited JSON-RPC on its pipes.

The SDK's ``stdio_client`` hides the process, so the exit status, the process group and
stderr would be out of reach; this transport runs the process itself.
"""

from __future__ import annotations

import json
import os
import re
import signal
from collections import deque
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager, suppress
from types import TracebackType
from typing import Any

import anyio
import mcp_types as types
import trio
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream
from mcp.client._transport import TransportStreams
from mcp.client.stdio import get_default_environment
from mcp.shared.message import SessionMessage
from mcp_types import INTERNAL_ERROR

from mcpvisor.specs import StdioSpec
from mcpvisor.specs._logging import library_logger
from mcpvisor.workers.hints import HINT_CHARS, HINT_LINES, hint_for
from mcpvisor.workers.link import Link, LostKind
from mcpvisor.workers.process_tree import (
    SESSION_TOKEN_VAR,
    await_group_death,
    group_exists,
    killpg,
    new_session_token,
    pin_descendants,
    pin_marked,
)
from mcpvisor.workers.spawn import spawn
from mcpvisor.workers.stderr_log import (
    SKIPPED_LINE_CHARS,
    SKIPPED_LINES_PER_SECOND,
    STDERR_LINE_CHARS,
    StderrLog,
)

_log = library_logger()

_EXIT_STATUS_GRACE = 0.25
"""How long to wait for the exit status (or the last stdout or, after a failing exit, stderr
bytes, which may name a remedy: see hints) once the other has arrived."""

_STDERR_DRAIN = 0.2
"""How long teardown waits for the last stderr bytes after the process group is dead."""

_SNIFF_BYTES = 4096
"""Bytes kept from each end of a message too large to keep, to find its id."""

_ID = rb'(-?\d+|"(?:[^"\\]|\\.)*")'
_ID_AT_START = re.compile(rb'\A\s*\{\s*(?:"jsonrpc"\s*:\s*"2\.0"\s*,\s*)?"id"\s*:\s*' + _ID)
_ID_AT_END = re.compile(rb'"id"\s*:\s*' + _ID + rb'\s*(?:,\s*"jsonrpc"\s*:\s*"2\.0"\s*)?\}\s*\Z')
"""Where a response's id sits: first after ``jsonrpc`` (Python SDKs) or last (TypeScript's).
Only a top-level id matches: a nested one is followed by more than one closing brace."""


def describe_returncode(returncode: int) -> str:
    """``returncode`` as words: ``exited with code 1``, ``was killed by SIGKILL``."""
    if returncode >= 0:
        return f"exited with code {returncode}"
    try:
        name = signal.Signals(-returncode).name
    except ValueError:
        name = f"signal {-returncode}"
    return f"was killed by {name}"


def sniff_id(head: bytes, tail: bytes) -> int | str | None:
    """The top-level ``id`` of a JSON-RPC message seen only by its two ends, if it shows."""
    found = _ID_AT_START.search(head) or _ID_AT_END.search(tail)
    if found is None:
        return None
    value = json.loads(found.group(1))
    return value if isinstance(value, int | str) else None


class StdioTransport(Link):
    """Runs a server as a child process and speaks newline-delimited JSON-RPC over its pipes.

    The child gets the SDK's safe base environment plus ``spec.env`` and a session token
    (:data:`~mcpvisor.workers.process_tree.SESSION_TOKEN_VAR`), and nothing else from the
    host; runs in its own session (so its process group id is its pid); is SIGKILLed by Linux
    if the host dies (``PR_SET_PDEATHSIG``); and has its stderr captured into structlog
    (event ``server.stderr``) rather than inherited.

    Stdout lines that are not JSON-RPC (a banner, a stray print) are skipped and logged
    (``server.stdout_skipped``, rate limited), as the SDK's own stdio client does; a message
    that ends such a line (after a half-written one) is still delivered. A message
    longer than ``spec.max_message_bytes`` is not kept: when its id shows at either end, its
    request fails alone with a JSON-RPC error; otherwise it is dropped with a warning.

    ``lost`` fires the moment the process exits, closes its stdout or stops reading its
    stdin; the session's read stream is closed just after, so pending SDK calls fail at once
    instead of waiting for a timeout, while answers already read are delivered first.

    Teardown closes stdin, waits half of ``shutdown`` for the server to exit, sends SIGTERM to
    the process group, waits out the rest, then sends SIGKILL; it always ends by SIGKILLing
    the group, every process that was below the child when teardown began (recursively, even
    ones that left the group) and every process carrying the session token (daemons that
    double-forked out of the tree), and reaping the child (so no zombie is left). See
    :mod:`mcpvisor.workers.process_tree` for what cannot be reached. Teardown is shielded
    from cancellation, and bounded by ``shutdown`` except for the reap after SIGKILL, which no
    process can refuse.
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
        self._token = new_session_token()
        self._cm: AbstractAsyncContextManager[TransportStreams] | None = None
        self._closing = False
        self._exited = trio.Event()
        self._stdout_done = trio.Event()
        self._stderr_done = trio.Event()
        self._stderr_tail: deque[bytes] | None = None
        self._skipped = StderrLog(
            server,
            redact,
            event="server.stdout_skipped",
            per_second=SKIPPED_LINES_PER_SECOND,
            chars=SKIPPED_LINE_CHARS,
        )

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

    def server_gone(self) -> bool:
        """The child has exited and been reaped, and nothing is left in its process group: a
        server killed outright. One that hung, closed its stdout or stopped reading its stdin
        may still hold what a new session needs, and so may the helpers a dead launcher (``npm
        exec``, ``uvx``) leaves in its group, until teardown has killed them. Helpers that left
        the group (``setsid``, double-forked daemons) are not looked for here, which would scan
        all of /proc on the event loop; teardown finds and kills them as the new session
        starts."""
        return self._exited.is_set() and (self.pid is None or not group_exists(self.pid))

    @asynccontextmanager
    async def _run(self) -> AsyncIterator[TransportStreams]:
        spec = self._spec
        env = get_default_environment() | dict(spec.env) | {SESSION_TOKEN_VAR: self._token}
        process = await spawn([spec.command, *spec.args], env=env, cwd=spec.cwd)
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
            self._skipped.flush()

    async def _lose(
        self, kind: LostKind, cause: str, to_session: MemoryObjectSendStream[Any]
    ) -> None:
        """Declare the link lost (first caller wins), then end the session's read stream."""
        if self.lost or self._closing:
            return
        if kind == "closed" and not self._exited.is_set():
            # An exit status says more than "stdout closed"; it usually follows within ms.
            with trio.move_on_after(_EXIT_STATUS_GRACE):
                await self._exited.wait()
        if self._exited.is_set() and self.returncode is not None:
            if self.returncode > 0 and not self._stderr_done.is_set():
                # A failing server's last stderr line may name a remedy (see hints). A process
                # that exited has closed stderr too; a grandchild holding it open must not
                # delay the restart, and a killed one said nothing worth the wait.
                with trio.move_on_after(_EXIT_STATUS_GRACE):
                    await self._stderr_done.wait()
            kind, cause = "exited", self._exit_cause(self.returncode)
        if self._closing or not self._declare(kind, cause):
            return
        _log.debug("server.link_lost", server=self._server, kind=kind, cause=cause)
        to_session.close()

    async def _watch_exit(self, process: Any, to_session: MemoryObjectSendStream[Any]) -> None:
        returncode = await process.wait()
        if not self._closing:
            self.returncode = returncode
        self._exited.set()
        # Let the reader deliver what the server wrote before it exited.
        with trio.move_on_after(_EXIT_STATUS_GRACE):
            await self._stdout_done.wait()
        # _lose replaces this cause with one that carries any hint (see _exit_cause).
        await self._lose(
            "exited", f"the server process {describe_returncode(returncode)}", to_session
        )

    def _exit_cause(self, returncode: int) -> str:
        cause = f"the server process {describe_returncode(returncode)}"
        # A server that was killed did not die of what its stderr said.
        hint = hint_for(self._stderr_tail) if self._stderr_tail and returncode > 0 else None
        return cause if hint is None else f"{cause}; {hint}"

    def _keep(self, line: bytes) -> None:
        """Keep ``line``'s ends among the last few, for :func:`hint_for` at exit."""
        if self._stderr_tail is None:
            self._stderr_tail = deque(maxlen=HINT_LINES)
        if len(line) > 2 * HINT_CHARS:
            line = line[:HINT_CHARS] + b" ... " + line[-HINT_CHARS:]
        self._stderr_tail.append(line)

    async def _read_stdout(
        self, process: Any, to_session: MemoryObjectSendStream[SessionMessage | Exception]
    ) -> None:
        assert process.stdout is not None
        limit = self._spec.max_message_bytes
        # A large message arrives in many chunks: the partial line grows in place and is never
        # rejoined or rescanned (that was quadratic, and a 50 MB result took minutes).
        buffer = bytearray()
        # Past the limit, only the ends of the line are kept, to find its id.
        skipping = False
        head = b""
        tail = bytearray()
        size = 0
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
                pos = 0
                while pos < len(chunk):
                    end = chunk.find(b"\n", pos)
                    piece = chunk[pos:] if end < 0 else chunk[pos:end]
                    pos = len(chunk) if end < 0 else end + 1
                    if skipping:
                        size += len(piece)
                        tail = (tail + piece)[-_SNIFF_BYTES:]
                    else:
                        buffer += piece
                        if len(buffer) > limit:
                            skipping, size = True, len(buffer)
                            head, tail = bytes(buffer[:_SNIFF_BYTES]), buffer[-_SNIFF_BYTES:]
                            buffer = bytearray()
                    if end < 0:
                        break
                    if skipping:
                        skipping = False
                        sent = await self._too_large(head, bytes(tail), size, to_session)
                    else:
                        line, buffer = buffer, bytearray()
                        sent = await self._deliver(line, to_session)
                    if not sent:
                        return
        finally:
            self._stdout_done.set()

    async def _deliver(
        self, line: bytearray, to_session: MemoryObjectSendStream[SessionMessage | Exception]
    ) -> bool:
        """Hand one line to the session, or skip it if it is not JSON-RPC; False once closed."""
        if not line.strip():
            return True
        try:
            message = types.jsonrpc_message_adapter.validate_json(line, by_name=False)
        except ValueError:
            self._skipped.line(line)
            # A message may follow a half-written one (or a prompt) on the same line.
            start = line.rfind(b'{"jsonrpc"')
            if start <= 0:
                return True
            try:
                message = types.jsonrpc_message_adapter.validate_json(line[start:], by_name=False)
            except ValueError:
                return True
        try:
            await to_session.send(SessionMessage(message))
        except (anyio.BrokenResourceError, anyio.ClosedResourceError):
            return False
        return True

    async def _too_large(
        self,
        head: bytes,
        tail: bytes,
        size: int,
        to_session: MemoryObjectSendStream[SessionMessage | Exception],
    ) -> bool:
        limit = self._spec.max_message_bytes
        request_id = sniff_id(head, tail)
        _log.warning(
            "server.message_too_large",
            server=self._server,
            bytes=size,
            max_message_bytes=limit,
            request_id=request_id,
        )
        if request_id is None:
            return True
        error = types.JSONRPCError(
            jsonrpc="2.0",
            id=request_id,
            error=types.ErrorData(
                code=INTERNAL_ERROR,
                message=(
                    f"the server's answer was {size} bytes, more than this server's "
                    f"max_message_bytes ({limit}) allows"
                ),
            ),
        )
        try:
            await to_session.send(SessionMessage(error))
        except (anyio.BrokenResourceError, anyio.ClosedResourceError):
            return False
        return True

    async def _write_stdin(
        self,
        process: Any,
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

    async def _read_stderr(self, process: Any) -> None:
        assert process.stderr is not None
        sink = StderrLog(self._server, self._redact)
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
                        self._keep(buffer)
                    return
                *lines, buffer = (buffer + chunk).split(b"\n")
                for line in lines:
                    if not cut:
                        sink.line(line)
                        self._keep(line)
                    cut = False
                # A newline-less flood is logged once (redacted, then cut), the rest dropped;
                # the log shows far less than is kept here, so no secret is cut in two.
                if len(buffer) > 4 * STDERR_LINE_CHARS:
                    if not cut:
                        sink.line(buffer)
                    buffer, cut = b"", True
        finally:
            sink.flush()
            self._stderr_done.set()

    async def _stop(self, process: Any) -> None:
        """Stop the process group; see the class docstring. Idempotent."""
        with trio.CancelScope(shield=True):
            start = trio.current_time()
            # Before stdin closes: a child that exits cleanly would orphan its helpers. A child
            # already dead has nothing left below it, and the token scan after the SIGKILL
            # below finds what it daemonized. /proc scans take ~10-25 us per process on the
            # host: off the event loop.
            pinned = []
            if process.returncode is None:
                pinned = await trio.to_thread.run_sync(self._pin_all, process)
            else:
                # Its loss was just published: let the subscribers hear it before the
                # teardown's own syscalls take the loop.
                await trio.lowlevel.checkpoint()
            try:
                await self._stop_pinned(process, start, pinned)
            finally:
                for pidfd in pinned:
                    os.close(pidfd)

    def _pin_all(self, process: Any) -> list[int]:
        return pin_descendants(process.pid) + pin_marked(self._token)

    async def _stop_pinned(self, process: Any, start: float, pinned: list[int]) -> None:
        if process.stdin is not None:
            await trio.aclose_forcefully(process.stdin)
        if process.returncode is None:
            with trio.move_on_at(start + self._shutdown_timeout / 2):
                await process.wait()
        if process.returncode is None:
            _log.debug("server.sigterm", server=self._server, pid=process.pid)
            killpg(process.pid, signal.SIGTERM)
            # A stopped process cannot act on SIGTERM until it is continued.
            killpg(process.pid, signal.SIGCONT)
            with trio.move_on_at(start + self._shutdown_timeout):
                await process.wait()
        if process.returncode is None:
            _log.warning("server.sigkill", server=self._server, pid=process.pid)
        # Also reaches grandchildren that outlived a clean exit of the child.
        killpg(process.pid, signal.SIGKILL)
        # Daemons may have double-forked during the grace period: look for the token again.
        pinned += await trio.to_thread.run_sync(pin_marked, self._token)
        for pidfd in pinned:
            with suppress(OSError):
                signal.pidfd_send_signal(pidfd, signal.SIGKILL)
        await process.wait()
        remaining = start + self._shutdown_timeout - trio.current_time()
        deadline = trio.current_time() + max(remaining, 1.0)
        await await_group_death(process.pid, max(remaining, 1.0))
        for pidfd in pinned:
            with trio.move_on_at(deadline):
                await trio.lowlevel.wait_readable(pidfd)
        with trio.move_on_after(_STDERR_DRAIN):
            await self._stderr_done.wait()
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                await trio.aclose_forcefully(stream)
