"""Every request's deadline, kept by one task rather than a cancel scope per request.

A cancel scope's entry and exit cost a request about a third of what the handle adds to a
call, and most calls end long before their deadline. So one task per supervisor sleeps until
the earliest deadline it holds, then hands what is overdue to ``expire``, which fails it and
cancels it (see :meth:`~mcpvisor.workers.requests.Envelope.cancel`): a queued envelope is never
sent, a call in flight is cancelled at the server, and an in-process sync tool, whose thread a
cancellation cannot stop, has its late answer dropped.

The deadlines live in a heap, so a wake costs the overdue calls it pops, never a scan of every
call still waiting: a hung server with thousands of queued calls whose deadlines fall one after
another stays linear. An answered call is not looked for in the heap; its entry is dropped
when its deadline comes up, or sooner when the heap has doubled since it was last swept. The
heap holds envelopes weakly, so an answered call's arguments and result are freed with it,
never kept for its deadline.
"""

from __future__ import annotations

import heapq
import itertools
import math
import weakref
from collections.abc import Callable

import trio

from mcpvisor.workers.requests import Envelope

#: Below this many entries the heap is never swept for answered calls.
SWEEP_FLOOR = 256


def _pending(ref: weakref.ref[Envelope]) -> Envelope | None:
    """The envelope if it is still unanswered and not called off."""
    envelope = ref()
    if envelope is None or envelope.reply.done or envelope.cancelled:
        return None
    return envelope


class DeadlineWatch:
    """The deadlines of the requests in flight, and the task that enforces them.

    :meth:`watch` files an envelope under the server it was sent to; :meth:`run` is the task.
    An envelope answered or called off before its deadline is skipped, never expired.
    """

    __slots__ = ("_heap", "_order", "_scope", "_sweep_at")

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, str, weakref.ref[Envelope]]] = []
        self._order = itertools.count()
        self._scope: trio.CancelScope | None = None
        self._sweep_at = SWEEP_FLOOR

    def __len__(self) -> int:
        """How many entries the heap holds, answered ones not yet dropped included."""
        return len(self._heap)

    def watch(self, server: str, envelope: Envelope) -> None:
        """Expire ``envelope`` at its deadline unless it is settled by then."""
        deadline = envelope.deadline
        if deadline == math.inf:
            return
        if len(self._heap) >= self._sweep_at:
            self._sweep()
        heapq.heappush(self._heap, (deadline, next(self._order), server, weakref.ref(envelope)))
        scope = self._scope
        if scope is not None and deadline < scope.deadline:
            scope.deadline = deadline

    def _sweep(self) -> None:
        self._heap = [entry for entry in self._heap if _pending(entry[3]) is not None]
        heapq.heapify(self._heap)
        self._sweep_at = max(SWEEP_FLOOR, 2 * len(self._heap))

    async def run(self, expire: Callable[[str, Envelope], None]) -> None:
        """Sleep until the earliest deadline, then ``expire`` each unsettled overdue envelope."""
        while True:
            heap = self._heap
            with trio.CancelScope(deadline=heap[0][0] if heap else math.inf) as scope:
                self._scope = scope
                await trio.sleep_forever()
            self._scope = None
            now = trio.current_time()
            heap = self._heap
            while heap and heap[0][0] <= now:
                _, _, server, ref = heapq.heappop(heap)
                envelope = _pending(ref)
                if envelope is not None:
                    expire(server, envelope)
                    # Not kept while this task sleeps: the heap holds envelopes weakly.
                    del envelope
