"""A request that carries its own handlers gets the server's questions asked during it.

Where the session can tell which request asked (streamable HTTP, and every 2026-07-28 session)
the request shares the server's session, concurrently with calls answered by the server's own
handlers. A 2025-era stdio session cannot tell, so the request goes through an isolated session.
"""

from __future__ import annotations

import pytest
import trio

import mcpvisor as mv
from tests.s2c.support import S2C_SERVER, Recorder, stdio_spec, text_of
from tests.workers.worker_helpers import http_server


async def _both(client: mv.SupervisorClient, server: str, caller: Recorder) -> tuple[str, str]:
    """A routed call and a plain one, in flight at the same time."""
    out: dict[str, str] = {}

    async def routed() -> None:
        result = await client.call_tool(
            server, "ask_model", {"prompt": "routed"}, handlers=caller.handlers()
        )
        out["routed"] = text_of(result)

    async def plain() -> None:
        out["plain"] = text_of(await client.call_tool(server, "ask_model", {"prompt": "plain"}))

    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(routed)
            nursery.start_soon(plain)
    return out["routed"], out["plain"]


async def test_routed_answers_share_an_http_session() -> None:
    host, caller = Recorder("host"), Recorder("caller")
    async with http_server(S2C_SERVER, "streamable-http") as server:
        spec = mv.HttpSpec(
            name="remote", url=server.url, protocol="legacy", handlers=host.handlers()
        )
        async with mv.open_supervisor(mv.SupervisorSpec([spec])) as client:
            for _ in range(3):
                routed, plain = await _both(client, "remote", caller)
                assert (routed, plain) == ("caller says routed", "host says plain")
            assert client.status().servers.keys() == {"remote"}
    assert caller.asked and all(ctx.routed and ctx.session == "remote" for _, ctx in caller.asked)
    assert host.asked and not any(ctx.routed for _, ctx in host.asked)


@pytest.mark.parametrize(("protocol", "shared"), [("2026-07-28", True), ("legacy", False)])
async def test_routed_answers_over_stdio(protocol: str, shared: bool) -> None:
    host, caller = Recorder("host"), Recorder("caller")
    spec = mv.SupervisorSpec([stdio_spec(protocol=protocol, handlers=host.handlers())])
    async with mv.open_supervisor(spec) as client:
        routed, plain = await _both(client, "s2c", caller)
        assert (routed, plain) == ("caller says routed", "host says plain")
        # An elicitation routed the same way, with only elicitation given by the caller.
        only = mv.ClientHandlers(elicitation=caller.elicitation)
        asked = await client.call_tool("s2c", "ask_user", {"question": "q"}, handlers=only)
        assert text_of(asked) == "accept:caller-42"
    sessions = {ctx.session for _, ctx in caller.asked}
    if shared:
        assert sessions == {"s2c"}
    else:
        # 2025-era stdio cannot tell which request asked: each routed call had its own session.
        assert len(sessions) == 2, sessions
        assert all(s.startswith("s2c~") for s in sessions), sessions
    assert all(ctx.routed and ctx.server == "s2c" for _, ctx in caller.asked)
    assert [kind for kind, _ in host.asked] == ["sampling"]


async def test_a_routed_handler_keeps_its_own_timeout() -> None:
    from mcp.shared.exceptions import MCPError

    async def stuck(ctx: mv.HandlerContext, params: object) -> object:
        await trio.sleep_forever()

    host = Recorder("host")
    spec = mv.SupervisorSpec([stdio_spec(protocol="2026-07-28", handlers=host.handlers())])
    async with mv.open_supervisor(spec) as client:
        mine = mv.ClientHandlers(sampling=stuck, timeout=0.5)  # type: ignore[arg-type]
        with trio.fail_after(60), pytest.raises(MCPError, match=r"within 0\.5s"):
            await client.call_tool("s2c", "ask_model", {"prompt": "x"}, handlers=mine)
        # The shared session is fine, and the host's handler still answers.
        result = await client.call_tool("s2c", "ask_model", {"prompt": "y"})
        assert text_of(result) == "host says y"
