"""A server killed while the host's handler answers its question in a 2026-07-28 round.

The round runs the handler in the call's own task, which then awaits nothing from the
transport, so the worker must end the call itself when the link is lost: before the fix it
waited out a grace meant for answers already read. The clock here never moves, so only the
loss itself (an I/O event) can end the call.
"""

from __future__ import annotations

import os
import signal
from typing import Any

import pytest
import trio
import trio.testing

import mcpvisor as mv
from tests.s2c.support import stdio_spec


@pytest.mark.timeout(60)
async def test_a_kill_while_a_handler_answers_interrupts_the_call_at_once(
    mock_clock: trio.testing.MockClock,
) -> None:
    asked = trio.Event()
    cancelled = trio.Event()

    async def sampling(ctx: mv.HandlerContext, params: Any) -> Any:
        asked.set()
        try:
            await trio.sleep_forever()
        finally:
            cancelled.set()

    spec = mv.SupervisorSpec(
        [stdio_spec(protocol="2026-07-28")], handlers=mv.ClientHandlers(sampling=sampling)
    )
    async with mv.open_supervisor(spec) as client:
        seen: list[mv.ServerState] = []

        async def call() -> None:
            with pytest.raises(mv.RequestInterruptedError) as caught:
                await client.call_tool("s2c", "ask_model", {"prompt": "hi"})
            seen.append(client.status().servers["s2c"].state)
            assert caught.value.server == "s2c"

        async with trio.open_nursery() as nursery:
            nursery.start_soon(call)
            await asked.wait()
            pid = client.status().servers["s2c"].pid
            assert pid is not None
            os.kill(pid, signal.SIGKILL)
        await cancelled.wait()
        # The owner heard of the loss before the caller was told.
        assert seen and seen[0] is not mv.ServerState.ACTIVE
        await client.stop("s2c")
