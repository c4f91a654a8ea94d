"""The deadline watch: what it expires, in what order, and what it keeps."""

from __future__ import annotations

import math
import weakref

import trio
import trio.testing
from hypothesis import given, settings
from hypothesis import strategies as st

from mcpvisor.supervisor.overdue import SWEEP_FLOOR, DeadlineWatch
from mcpvisor.workers.operations import ListTools
from mcpvisor.workers.requests import Envelope, Reply


def _envelope(deadline: float) -> Envelope:
    return Envelope(ListTools(), Reply(), deadline)


async def _watching(
    watch: DeadlineWatch,
    expired: list[tuple[str, Envelope]],
    until: float,
) -> None:
    """Run ``watch`` until ``until`` on the (autojumping) clock."""
    async with trio.open_nursery() as nursery:
        nursery.start_soon(watch.run, lambda name, e: expired.append((name, e)))
        await trio.sleep_until(until)
        nursery.cancel_scope.cancel()


calls = st.lists(
    st.tuples(
        st.floats(min_value=0.5, max_value=50.0),
        st.sampled_from(["kept", "answered", "called off"]),
    ),
    max_size=60,
)


@settings(max_examples=60, deadline=None)
@given(calls=calls, until=st.floats(min_value=1.0, max_value=60.0))
def test_only_unsettled_overdue_calls_expire_earliest_first(
    calls: list[tuple[float, str]], until: float
) -> None:
    async def main() -> list[tuple[str, Envelope]]:
        watch = DeadlineWatch()
        expired: list[tuple[str, Envelope]] = []
        envelopes = []
        for i, (delay, fate) in enumerate(calls):
            envelope = _envelope(trio.current_time() + delay)
            watch.watch(f"s{i}", envelope)
            envelopes.append((envelope, fate))
        for envelope, fate in envelopes:
            if fate == "answered":
                envelope.reply.set_result(None)
            elif fate == "called off":
                envelope.cancel()
        start = trio.current_time()
        await _watching(watch, expired, start + until)
        return expired

    clock = trio.testing.MockClock(autojump_threshold=0)
    expired = trio.run(main, clock=clock)
    deadlines = [e.deadline for _, e in expired]
    assert deadlines == sorted(deadlines)
    want = sorted(
        (delay, i) for i, (delay, fate) in enumerate(calls) if fate == "kept" and delay <= until
    )
    assert [name for name, _ in expired] == [f"s{i}" for _, i in want]


async def test_a_deadline_earlier_than_the_sleep_wakes_the_watch(
    autojump_clock: trio.testing.MockClock,
) -> None:
    watch = DeadlineWatch()
    expired: list[tuple[str, Envelope]] = []
    late = _envelope(trio.current_time() + 100.0)
    watch.watch("late", late)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(watch.run, lambda name, e: expired.append((name, e)))
        await trio.sleep(1.0)
        early = _envelope(trio.current_time() + 2.0)
        watch.watch("early", early)
        await trio.sleep(2.5)
        assert expired == [("early", early)]
        nursery.cancel_scope.cancel()


async def test_a_call_without_a_deadline_is_not_held() -> None:
    watch = DeadlineWatch()
    watch.watch("s", _envelope(math.inf))
    assert len(watch) == 0


async def test_answered_calls_do_not_pile_up_behind_a_long_deadline(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A stream of quick calls with long deadlines holds a bounded heap, not every call."""
    watch = DeadlineWatch()
    pending = [_envelope(trio.current_time() + 3600.0) for _ in range(10)]
    for envelope in pending:
        watch.watch("slow", envelope)
    for _ in range(20 * SWEEP_FLOOR):
        envelope = _envelope(trio.current_time() + 3600.0)
        watch.watch("quick", envelope)
        envelope.reply.set_result(None)
    assert len(watch) <= 2 * SWEEP_FLOOR
    expired: list[tuple[str, Envelope]] = []
    await _watching(watch, expired, trio.current_time() + 3601.0)
    assert [name for name, _ in expired] == ["slow"] * 10


async def test_an_answered_call_is_not_kept_alive_for_its_deadline() -> None:
    """Its arguments and result go with it, not an hour later when its deadline comes up."""
    watch = DeadlineWatch()
    envelope = _envelope(trio.current_time() + 3600.0)
    watch.watch("s", envelope)
    envelope.reply.set_result(object())
    gone = weakref.ref(envelope)
    del envelope
    assert gone() is None
    assert len(watch) == 1
