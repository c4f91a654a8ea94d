"""The mailbox between the runtime and a worker: an unbounded FIFO, a trio channel's promises."""

from __future__ import annotations

import pytest
import trio
import trio.testing

from mcpvisor.workers.requests import Mailbox


def test_items_come_out_in_order_and_an_empty_mailbox_would_block() -> None:
    box = Mailbox[int]()
    for item in range(5):
        box.send_nowait(item)
    assert [box.receive_nowait() for _ in range(5)] == [0, 1, 2, 3, 4]
    with pytest.raises(trio.WouldBlock):
        box.receive_nowait()


def test_after_close_what_is_left_is_received_then_the_end() -> None:
    box = Mailbox[int]()
    box.send_nowait(1)
    box.close()
    with pytest.raises(trio.ClosedResourceError):
        box.send_nowait(2)
    assert box.receive_nowait() == 1
    with pytest.raises(trio.EndOfChannel):
        box.receive_nowait()


async def test_waiting_receivers_each_get_one_item() -> None:
    box = Mailbox[str]()
    got: list[tuple[int, str]] = []

    async def receiver(i: int) -> None:
        got.append((i, await box.receive()))

    async with trio.open_nursery() as nursery:
        for i in range(3):
            nursery.start_soon(receiver, i)
            await trio.testing.wait_all_tasks_blocked()
        for item in "abc":
            box.send_nowait(item)
    # Which waiting receiver takes which item is the scheduler's business, as with trio's.
    assert sorted(i for i, _ in got) == [0, 1, 2]
    assert sorted(item for _, item in got) == ["a", "b", "c"]


async def test_a_cancelled_receiver_leaves_its_item_for_the_next() -> None:
    box = Mailbox[int]()
    with trio.CancelScope() as scope:
        scope.cancel()
        await box.receive()
    assert scope.cancelled_caught

    async with trio.open_nursery() as nursery:
        cancelled = trio.CancelScope()

        async def gives_up() -> None:
            with cancelled:
                await box.receive()

        nursery.start_soon(gives_up)
        await trio.testing.wait_all_tasks_blocked()
        cancelled.cancel()
        await trio.testing.wait_all_tasks_blocked()
        box.send_nowait(7)
    assert cancelled.cancelled_caught
    assert box.receive_nowait() == 7


async def test_a_closed_mailbox_ends_a_waiting_receiver() -> None:
    box = Mailbox[int]()
    ended: list[BaseException] = []

    async def receiver() -> None:
        try:
            await box.receive()
        except trio.EndOfChannel as end:
            ended.append(end)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(receiver)
        await trio.testing.wait_all_tasks_blocked()
        box.close()
    assert len(ended) == 1
