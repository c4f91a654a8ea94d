"""What travels from a caller to a worker: a request, a one-shot reply, and the envelope."""

from __future__ import annotations

import contextvars
import math
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, Literal, TypeAlias, get_args

import attrs
import trio
from mcp.shared.dispatcher import ProgressFnT

Operation: TypeAlias = Literal[
    "list_tools",
    "call_tool",
    "list_resources",
    "list_resource_templates",
    "read_resource",
    "list_prompts",
    "get_prompt",
    "complete",
    "probe",
]
"""The MCP operations a worker serves; ``probe`` is a health check (see :class:`Request`)."""

OPERATIONS: tuple[Operation, ...] = get_args(Operation)

ProgressCallback: TypeAlias = ProgressFnT
"""``await progress(progress, total, message)`` for each progress notification of a call."""

_REQUIRED_ARGS: Mapping[Operation, tuple[str, ...]] = {
    "call_tool": ("name",),
    "read_resource": ("uri",),
    "get_prompt": ("name",),
    "complete": ("ref", "argument"),
}


def _frozen_args(value: Mapping[str, Any] | None) -> Mapping[str, Any]:
    return MappingProxyType(dict(value or {}))


@attrs.frozen
class Request:
    """One MCP operation for a worker to perform.

    ``args`` by operation (optional keys in brackets):

    - ``list_tools``, ``list_resources``, ``list_resource_templates``, ``list_prompts``:
      [``cursor``], [``cache_mode``: ``"use"``, ``"refresh"`` or ``"bypass"``]. One page, as the
      SDK's ``List*Result``.
    - ``call_tool``: ``name``, [``arguments``], [``meta``]. A ``CallToolResult``; one with
      ``is_error`` set is a result, not an exception.
    - ``read_resource``: ``uri``. - ``get_prompt``: ``name``, [``arguments``].
    - ``complete``: ``ref``, ``argument``, [``context_arguments``].
    - ``probe``: none. ``ping`` on handshake-era sessions, an uncached ``tools/list`` on
      2026-07-28 ones (which have no ping); the result is None.

    ``progress`` receives ``call_tool``'s progress notifications.
    """

    op: Operation
    args: Mapping[str, Any] = attrs.field(factory=dict, converter=_frozen_args)
    progress: ProgressCallback | None = attrs.field(default=None, eq=False)

    def __attrs_post_init__(self) -> None:
        if self.op not in OPERATIONS:
            raise ValueError(f"unknown operation {self.op!r}; expected one of {OPERATIONS}")
        missing = [key for key in _REQUIRED_ARGS.get(self.op, ()) if key not in self.args]
        if missing:
            raise ValueError(f"{self.op} needs args {', '.join(missing)}")


class Reply:
    """A one-shot slot for a request's outcome: created by the caller, filled by the worker.

    The first ``set_result`` or ``set_error`` wins and later ones are ignored, so the worker
    can fail every pending reply on a crash without racing the request that was just answering.
    """

    __slots__ = ("_done", "_error", "_value")

    def __init__(self) -> None:
        self._done = trio.Event()
        self._value: object = None
        self._error: BaseException | None = None

    def set_result(self, value: object) -> None:
        """Complete with ``value``, unless already done."""
        if not self._done.is_set():
            self._value = value
            self._done.set()

    def set_error(self, error: BaseException) -> None:
        """Complete with ``error`` (raised by :meth:`wait`), unless already done."""
        if not self._done.is_set():
            self._error = error
            self._done.set()

    @property
    def done(self) -> bool:
        """Whether a result or an error has been set."""
        return self._done.is_set()

    @property
    def error(self) -> BaseException | None:
        """The error, if completed with one; None while pending or after a result."""
        return self._error

    async def wait(self) -> object:
        """Wait for completion, then return the result or raise the error."""
        await self._done.wait()
        if self._error is not None:
            raise self._error
        return self._value

    def __repr__(self) -> str:
        state = "pending" if not self.done else ("error" if self._error is not None else "result")
        return f"<Reply {state}>"


@attrs.define(eq=False)
class Envelope:
    """A request on its way to a worker, with where to put the answer and how to call it off.

    ``scope`` is an unentered :class:`trio.CancelScope`; the worker performs the call inside
    it. A caller that gives up (its own cancel scope, a deadline) calls ``scope.cancel()``:
    the SDK call is cancelled and the server receives ``notifications/cancelled``. The worker
    bounds the call by ``deadline`` (trio's clock) when the caller set one, else by
    ``now + timeouts.request``, and fails the reply with :class:`RequestTimeoutError` when it
    passes.

    Envelopes compare by identity: two identical requests are still two requests.
    """

    request: Request
    reply: Reply = attrs.field(factory=Reply)
    scope: trio.CancelScope = attrs.field(factory=trio.CancelScope)
    deadline: float = math.inf
    context: contextvars.Context | None = None
