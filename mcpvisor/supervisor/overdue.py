"""Waking callers at their deadline when the call itself may not end there.

A call to a subprocess or a remote server waits on a stream, which ends the moment the
envelope's cancel scope passes its deadline. Two kinds of call may not: an envelope still
queued behind busy serving tasks (its scope is not entered yet), and an in-process tool (the
SDK runs a sync tool in a thread that a cancellation cannot stop). Rather than have every such
caller hold a second cancel scope (a quarter of the handle's own cost per call), one task per
supervisor sleeps until the earliest deadline it was told of and then fails what is overdue.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import trio


class DeadlineWatch:
    """One sleeping task's deadline, moved earlier by :meth:`watch` and renewed by :meth:`run`.

    A deadline later than the one already due costs a comparison: the watch wakes at the
    earlier one and asks ``expire`` for the next, so a stale wake (its call already answered)
    is what keeps a stream of calls cheap.
    """

    __slots__ = ("_next", "_scope")

    def __init__(self) -> None:
        self._next = math.inf
        self._scope: trio.CancelScope | None = None

    def watch(self, deadline: float) -> None:
        """Make sure the watch wakes by ``deadline``."""
        if deadline < self._next:
            self._next = deadline
            if self._scope is not None:
                self._scope.deadline = deadline

    async def run(self, expire: Callable[[], float]) -> None:
        """Sleep until the earliest deadline, then call ``expire``, forever.

        ``expire`` fails what is overdue and returns the earliest deadline still pending
        (``math.inf`` for none).
        """
        while True:
            with trio.CancelScope(deadline=self._next) as scope:
                self._scope = scope
                await trio.sleep_forever()
            self._scope = None
            self._next = math.inf
            self.watch(expire())
