"""An answered request leaves nothing of itself behind in the worker that served it.

A serving task lives as long as its session and may wait a long time for its next call; what
it served last (the result, the caller's context) must be freed once the caller is done with
it, however large, not when that task happens to serve again.
"""

from __future__ import annotations

import contextvars
import gc
import weakref
from typing import Any

import trio
from mcp.server.mcpserver import MCPServer

import mcpvisor as mv


class _Tag:
    """Something a caller keeps in a context variable: a request-scoped object."""


_TAG: contextvars.ContextVar[_Tag | None] = contextvars.ContextVar("tag", default=None)


def _server() -> MCPServer:
    server = MCPServer("retention")

    @server.tool()
    async def blob(size: int) -> str:
        return "x" * size

    @server.tool()
    async def hang() -> str:
        await trio.sleep_forever()
        raise AssertionError("unreachable")

    return server


async def test_a_served_result_and_the_callers_context_are_freed_after_the_answer() -> None:
    spec = mv.SupervisorSpec(servers=[mv.InProcessSpec(name="s", server=_server())])
    async with mv.open_supervisor(spec) as client:
        tag = _Tag()
        _TAG.set(tag)
        result = await client.call_tool("s", "blob", {"size": 1_000_000})
        assert len(result.content[0].text) == 1_000_000  # type: ignore[union-attr]
        answered, tagged = weakref.ref(result), weakref.ref(tag)
        _TAG.set(None)
        del result, tag
        # The serving task is idle now, waiting for a next call that does not come.
        await trio.testing.wait_all_tasks_blocked()
        gc.collect()
        assert answered() is None, gc.get_referrers(answered())
        assert tagged() is None, gc.get_referrers(tagged())


async def test_a_call_cancelled_at_its_deadline_leaves_nothing_behind(autojump_clock: Any) -> None:
    spec = mv.SupervisorSpec(servers=[mv.InProcessSpec(name="s", server=_server())])
    async with mv.open_supervisor(spec) as client:

        async def call_tagged() -> weakref.ref[_Tag]:
            # In a frame of its own that ends here: a frame's locals can be snapshotted
            # (by a traceback, by trio's KI protection) and the snapshot would hold the tag.
            tag = _Tag()
            token = _TAG.set(tag)
            try:
                await client.call_tool("s", "hang", {}, timeout=5)
            except mv.RequestTimeoutError:
                pass
            else:
                raise AssertionError("the call must time out")
            finally:
                _TAG.reset(token)
            return weakref.ref(tag)

        tagged = await call_tagged()
        await trio.testing.wait_all_tasks_blocked()
        gc.collect()
        assert tagged() is None, gc.get_referrers(tagged())
