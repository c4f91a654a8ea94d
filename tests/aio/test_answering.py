"""Servers' questions reach an asyncio host's handlers on the host's own loop.

The handlers here can only work there: each awaits a future of the host loop's that only the
loop itself resolves, and records the loop and thread it ran on.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import threading
from typing import Any

import mcp_types as types
import pytest
from aio_support import RUNNERS, run
from mcp.shared.exceptions import MCPError

import mcpvisor as mv
import mcpvisor.aio
from tests.s2c.support import Recorder, stdio_spec, text_of


class HostSide(Recorder):
    """Handlers that need the host loop: each first waits for the loop to run a callback."""

    def __init__(self, tag: str) -> None:
        super().__init__(tag)
        self.ran_on: list[tuple[str, asyncio.AbstractEventLoop, int]] = []
        self.where_logged: list[tuple[str, asyncio.AbstractEventLoop, int]] = []

    def _where(self, kind: str, into: list[Any]) -> None:
        into.append((kind, asyncio.get_running_loop(), threading.get_ident()))

    async def sampling(
        self, ctx: mv.HandlerContext, params: types.CreateMessageRequestParams
    ) -> types.CreateMessageResult:
        await _through_the_loop()
        self._where("sampling", self.ran_on)
        return await super().sampling(ctx, params)

    async def roots(self, ctx: mv.HandlerContext) -> list[str]:
        await _through_the_loop()
        self._where("roots", self.ran_on)
        return [f"file:///{self.tag}"]

    def on_log(self, record: mv.ServerLog) -> None:
        self._where(str(record.data), self.where_logged)

    def handlers(self, **kwargs: Any) -> mv.ClientHandlers:
        kwargs.setdefault("log_level", "debug")
        return mv.ClientHandlers(
            sampling=self.sampling, roots=self.roots, logging=self.on_log, **kwargs
        )


async def _through_the_loop() -> None:
    """Await a future the running asyncio loop resolves: under Trio this cannot complete."""
    done = asyncio.get_running_loop().create_future()
    done.get_loop().call_soon(done.set_result, None)
    await done


@pytest.mark.parametrize("runner", RUNNERS)
def test_handlers_run_on_the_host_loop(runner: mcpvisor.aio.Runner) -> None:
    host, caller, late = HostSide("host"), HostSide("caller"), HostSide("late")

    async def main() -> None:
        loop, thread = asyncio.get_running_loop(), threading.get_ident()
        spec = mv.SupervisorSpec([stdio_spec(protocol="2026-07-28")], handlers=host.handlers())
        async with mcpvisor.aio.open_supervisor(spec, runner=runner) as client:
            plain = await asyncio.wait_for(
                client.call_tool("s2c", "ask_model", {"prompt": "a"}), 60
            )
            assert text_of(plain) == "host says a"
            routed = await asyncio.wait_for(
                client.call_tool("s2c", "ask_model", {"prompt": "b"}, handlers=caller.handlers()),
                60,
            )
            assert text_of(routed) == "caller says b"
            roots = await client.call_tool("s2c", "roots", {})
            assert "file:///host" in text_of(roots)

            added = stdio_spec("added", protocol="legacy", handlers=late.handlers())
            assert (await client.add_server(added)).state is mv.ServerState.ACTIVE
            answer = await client.call_tool("added", "ask_model", {"prompt": "c"})
            assert text_of(answer) == "late says c"
            await client.call_tool("s2c", "log_here", {"count": 2, "level": "warning"})
        for side in (host, caller, late):
            assert side.ran_on, side.tag
            assert all(on is loop and t == thread for _, on, t in side.ran_on), side.ran_on
        assert [kind for kind, _, _ in caller.ran_on] == ["sampling"]
        assert host.where_logged
        assert all(on is loop and t == thread for _, on, t in host.where_logged)

    run(main())


@pytest.mark.parametrize("runner", RUNNERS)
def test_a_sync_handler_on_the_host_is_refused_with_an_answer_that_says_so(
    runner: mcpvisor.aio.Runner,
) -> None:
    ran_on: list[int] = []

    def sync_sampling(ctx: mv.HandlerContext, params: Any) -> Any:
        ran_on.append(threading.get_ident())
        return "not awaited"

    async def main() -> None:
        handlers = mv.ClientHandlers(sampling=sync_sampling)
        spec = mv.SupervisorSpec([stdio_spec(protocol="legacy")], handlers=handlers)
        async with mcpvisor.aio.open_supervisor(spec, runner=runner) as client:
            # The server's tool passes the client's error on as its own.
            with pytest.raises(MCPError) as refused:
                await asyncio.wait_for(client.call_tool("s2c", "ask_model", {"prompt": "a"}), 60)
            message = refused.value.error.message
            assert (
                message == "the client's sampling handler is not async (declare it with async def)"
            )
        assert ran_on == [threading.get_ident()]  # called once, on the host loop's thread

    run(main())


def test_the_asyncio_handle_has_every_method_of_the_trio_handle_with_its_parameters() -> None:
    pairs = [
        (mv.SupervisorClient, mcpvisor.aio.SupervisorClient),
        (mv.IsolatedSession, mcpvisor.aio.IsolatedSession),
    ]
    for trio_side, aio_side in pairs:
        public = sorted(n for n in dir(trio_side) if not n.startswith("_"))
        assert public == sorted(n for n in dir(aio_side) if not n.startswith("_"))
        for name in public:
            if callable(getattr(trio_side, name)):
                want = list(inspect.signature(getattr(trio_side, name)).parameters)
                assert list(inspect.signature(getattr(aio_side, name)).parameters) == want, name


@pytest.mark.parametrize("runner", RUNNERS)
def test_what_servers_are_told_and_reconfiguring_from_asyncio(runner: mcpvisor.aio.Runner) -> None:
    host = HostSide("host")

    async def main() -> None:
        loop = asyncio.get_running_loop()
        # Roots from the start: a session advertises the roots capability when it begins.
        first = mv.ClientHandlers(roots=["file:///start"])
        spec = mv.SupervisorSpec([stdio_spec(protocol="legacy", handlers=first)])
        async with (
            mcpvisor.aio.open_supervisor(spec, runner=runner) as client,
            client.resource_updates() as updates,
        ):
            await client.set_roots(host.roots)
            assert "file:///host" in text_of(await client.call_tool("s2c", "roots", {}))
            await client.set_roots(["file:///static"], server="s2c")
            assert "file:///static" in text_of(await client.call_tool("s2c", "roots", {}))

            await client.subscribe_resource("s2c", "res://counter")
            assert json.loads(
                text_of(await client.call_tool("s2c", "touch", {"uri": "res://counter"}))
            )
            update = await asyncio.wait_for(updates.__anext__(), 30)
            assert (update.server, update.uri) == ("s2c", "res://counter")
            await client.unsubscribe_resource("s2c", "res://counter")
            await client.set_logging_level("s2c", "error")

            async with client.isolated("s2c", handlers=host.handlers()) as session:
                answer = await session.call_tool("ask_model", {"prompt": "d"})
                assert text_of(answer) == "host says d"

            grown = mv.SupervisorSpec([*spec.servers, stdio_spec("more", protocol="legacy")])
            report = await client.reconfigure(grown)
            assert report.added == ("more",)
            assert client.status().servers["more"].state is mv.ServerState.ACTIVE
            report = await client.reload(lambda: spec)
            assert report.removed == ("more",)
            assert "more" not in client.status().servers
        assert host.ran_on and all(on is loop for _, on, _ in host.ran_on)
        kinds = {kind for kind, _, _ in host.ran_on}
        assert kinds == {"roots", "sampling"}

    run(main())
