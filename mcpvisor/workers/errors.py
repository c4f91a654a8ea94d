"""Typed errors a worker raises or hands to callers.

Messages name the server and say what went wrong; they never repeat environment values,
header values or URL credentials, so they are safe to log and to show to users.
"""

from __future__ import annotations

from typing import Any, Literal, TypeAlias

from mcpvisor.specs.errors import MCPVisorError

StartErrorKind: TypeAlias = Literal["connect", "timeout", "exited", "protocol", "config"]
"""Why a start failed.

- ``connect``: the process could not be spawned, or the server could not be reached.
- ``timeout``: connect plus handshake did not finish within ``connect + initialize`` seconds.
- ``exited``: the stdio process exited (or closed its stdout) before the handshake finished.
- ``protocol``: the server answered, but not with MCP (garbage on stdout, a failed handshake).
- ``config``: the spec cannot work as written (the command does not exist, a bad ``cwd``).
"""


class StartError(MCPVisorError):
    """A server failed to start; raised by ``nursery.start(run_worker, ...)`` before it is ready.

    Nothing is left behind: a spawned process has been killed and reaped by the time this is
    raised. ``kind`` says which step failed (see :data:`StartErrorKind`) and ``cause`` says
    how, in words safe to log.
    """

    def __init__(self, server: str, kind: StartErrorKind, cause: str) -> None:
        self.server = server
        self.kind: StartErrorKind = kind
        self.cause = cause
        super().__init__(f"server {server!r} failed to start ({kind}): {cause}")

    def __reduce__(self) -> tuple[type[StartError], tuple[str, StartErrorKind, str]]:
        return (type(self), (self.server, self.kind, self.cause))


class RequestInterruptedError(MCPVisorError):
    """A request did not complete because its server went away, or was stopped, first.

    Raised to every request in flight, and every request still queued, the moment the worker
    learns that its session is over; none waits for its own timeout. ``sent`` is False when the
    request was still queued and never reached the server, so any operation may be retried
    safely; when True, the server may have acted on it, so only idempotent ones should be.
    """

    def __init__(self, server: str, operation: str, cause: str, *, sent: bool = True) -> None:
        self.server = server
        self.operation = operation
        self.cause = cause
        self.sent = sent
        super().__init__(f"{operation} on server {server!r} was interrupted: {cause}")

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild_interrupted, (self.server, self.operation, self.cause, self.sent))


class RequestTimeoutError(MCPVisorError, TimeoutError):
    """A request outlived its deadline: the caller's when it set one, else ``timeouts.request``.

    A caller's deadline replaces the server's default bound (it may be longer or shorter);
    without one, the bound counts from when the worker took the request off its queue. The
    worker has cancelled the call, which sends ``notifications/cancelled`` to the server. The
    server stays up: one slow request says nothing about its health. ``timeout`` is the time
    the call was given, in seconds.
    """

    def __init__(self, server: str, operation: str, timeout: float) -> None:
        self.server = server
        self.operation = operation
        self.timeout = timeout
        super().__init__(f"{operation} on server {server!r} timed out after {timeout:g}s")

    def __reduce__(self) -> tuple[type[RequestTimeoutError], tuple[str, str, float]]:
        return (type(self), (self.server, self.operation, self.timeout))


def _rebuild_interrupted(
    server: str, operation: str, cause: str, sent: bool
) -> RequestInterruptedError:
    return RequestInterruptedError(server, operation, cause, sent=sent)
