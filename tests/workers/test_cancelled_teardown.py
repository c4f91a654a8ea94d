"""A worker cancelled as its session fails raises the cancellation, not the teardown's errors."""

from __future__ import annotations

import pytest
import trio
import trio.lowlevel
from mcp.shared.exceptions import MCPError
from mcp_types import CONNECTION_CLOSED

from mcpvisor.workers.worker import cancellation_only


def _closed() -> MCPError:
    return MCPError(CONNECTION_CLOSED, "Connection closed")


async def test_the_owners_scope_absorbs_what_is_left_of_a_cancelled_failure() -> None:
    errors: list[Exception] = []
    with trio.CancelScope() as scope:
        scope.cancel()
        try:
            await trio.lowlevel.checkpoint()
        except trio.Cancelled as cancelled:
            group = BaseExceptionGroup("teardown", [cancelled, _closed()])
            rest, errors = cancellation_only(group)
            raise rest from None
    assert scope.cancelled_caught
    assert [e.error.message for e in errors if isinstance(e, MCPError)] == ["Connection closed"]


async def test_the_whole_group_would_escape_the_owners_scope() -> None:
    """What the worker did before: the error outlived the cancellation that caused it."""
    with pytest.raises(ExceptionGroup) as raised, trio.CancelScope() as scope:
        scope.cancel()
        try:
            await trio.lowlevel.checkpoint()
        except trio.Cancelled as cancelled:
            raise BaseExceptionGroup("teardown", [cancelled, _closed()]) from None
    assert [type(e) for e in raised.value.exceptions] == [MCPError]


def test_errors_alone_and_a_lone_cancellation_are_left_as_they_are() -> None:
    errors_only = ExceptionGroup("failed", [_closed()])
    assert cancellation_only(errors_only) == (errors_only, [])
    interrupt = KeyboardInterrupt()
    assert cancellation_only(interrupt) == (interrupt, [])
    nested = BaseExceptionGroup("outer", [KeyboardInterrupt(), ExceptionGroup("in", [_closed()])])
    rest, errors = cancellation_only(nested)
    assert isinstance(rest, BaseExceptionGroup)
    assert [type(e) for e in rest.exceptions] == [KeyboardInterrupt]
    assert [type(e) for e in errors] == [MCPError]
