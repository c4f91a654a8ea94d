"""Every request's deadline, kept by one task rather than a cancel scope per request.

A cancel scope's entry and exit cost a request about a third of what the handle adds to a
call, and most calls end long before their deadline. So one task per supervisor sleeps until
the earliest deadline it was told of, then fails what is overdue and cancels it (see
:meth:`~mcpvisor.workers.requests.Envelope.cancel`): a queued envelope is never sent, a call in
flight is cancelled at the server, and an in-process sync tool, whose thread a cancellation
cannot stop, has its late answer dropped.
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
