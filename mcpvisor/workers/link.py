"""A transport's liveness as a signal: the SDK's session has none of its own.

A dead server is otherwise only noticed by the next request. A :class:`Link` fires the moment
its transport is gone and calls its owner back synchronously, so the owner can report the loss
before teardown starts. :class:`WatchedTransport` wraps any SDK transport (streamable HTTP,
SSE) and reports the end of its read stream; the stdio transport is a link of its own.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from types import TracebackType
from typing import Any, Literal, TypeAlias

import anyio
from mcp.client._transport import TransportStreams
from mcp.shared.message import SessionMessage

LostKind: TypeAlias = Literal["exited", "protocol", "closed"]
"""How a link ended: the process exited, the server broke the protocol, or the stream closed."""


class Link:
    """Whether a transport is still connected; ``lost`` turns True once, when it is not.

    After ``lost``: ``kind`` and ``cause`` say how it ended, and ``returncode`` holds the exit
    status when a process exited on its own (not when teardown killed it). ``on_lost``, when
    set, is called synchronously as the loss is declared, before the session's read stream
    ends, so its owner hears of the loss before any pending call fails.
    """

    def __init__(self) -> None:
        self.lost = False
        self.kind: LostKind | None = None
        self.cause: str | None = None
        self.returncode: int | None = None
        self.pid: int | None = None
        self.on_lost: Callable[[Link], None] | None = None

    def server_gone(self) -> bool:
        """Whether the server is gone, so that a new session of it need not wait for this one's
        teardown to free a port, a lock or a file. A remote server never ran here, and an
        in-process one is the host's own object; a process may linger (see
        :meth:`~mcpvisor.workers.stdio.StdioTransport.server_gone`)."""
        return True

    def _declare(self, kind: LostKind, cause: str) -> bool:
        if self.lost:
            return False
        self.kind, self.cause = kind, cause
        self.lost = True
        if self.on_lost is not None:
            self.on_lost(self)
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
        self.lose("the server closed the connection")

    def lose(self, cause: str) -> None:
        """Declare the link lost with ``cause`` (unless it is closing, or already lost)."""
        if not self._closing:
            self._declare("closed", cause)

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
