"""The servers' questions relayed to the gateway's client: the SDK's own ``Client`` answers.

The downstream is the server-to-client test server (tests/s2c/s2c_server.py), which asks
through the SDK's ``Resolve`` markers: standalone requests on 2025-era sessions, input-required
rounds on 2026-07-28 ones. Over a 2025-era stdio session its questions are unrouted (the
gateway's routing rule picks the client); over streamable HTTP, or any 2026-07-28 session,
they are routed with the gateway request that caused them.
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import mcp_types as types
import pytest
import trio
from mcp import Client
from mcp.client.session import ClientRequestContext
from mcp.shared.exceptions import MCPError

import mcpvisor as mv
from tests.gateway.support import GATEWAY_TIMEOUT, http_gateway, wait_for
from tests.s2c.support import S2C_SERVER
from tests.workers.worker_helpers import http_server

ERAS = ["legacy", "2026-07-28"]
DOWNSTREAMS = ["stdio-legacy", "stdio-2026", "http-legacy"]


class Caller:
    """The gateway client's answers: its model, its user and its roots, recorded."""

    def __init__(self, tag: str = "client") -> None:
        self.tag = tag
        self.asked: list[str] = []

    async def sampling(
        self, context: ClientRequestContext, params: types.CreateMessageRequestParams
    ) -> types.CreateMessageResult:
        content = params.messages[0].content
        prompt = content.text if isinstance(content, types.TextContent) else "?"
        self.asked.append(f"sampling {prompt}")
        return types.CreateMessageResult(
            role="assistant",
            content=types.TextContent(type="text", text=f"{self.tag} says {prompt}"),
            model="test-model",
        )

    async def elicitation(
        self, context: ClientRequestContext, params: types.ElicitRequestParams
    ) -> types.ElicitResult:
        self.asked.append(f"elicitation {params.message}")
        return types.ElicitResult(action="accept", content={"answer": f"{self.tag}-42"})

    async def roots(self, context: ClientRequestContext) -> types.ListRootsResult:
        self.asked.append("roots")
        return types.ListRootsResult(roots=[types.Root(uri="file:///work/project")])  # type: ignore[arg-type]

    def callbacks(self) -> dict[str, Any]:
        return {
            "sampling_callback": self.sampling,
            "elicitation_callback": self.elicitation,
            "list_roots_callback": self.roots,
        }


def text(result: types.CallToolResult) -> str:
    block = result.content[0]
    assert isinstance(block, types.TextContent), result
    return block.text


def s2c_stdio(protocol: str, name: str = "s") -> mv.StdioSpec:
    return mv.StdioSpec(
        name=name, command=sys.executable, args=[str(S2C_SERVER)], protocol=protocol
    )


@asynccontextmanager
async def fronting(downstream: str, **spec_fields: Any) -> AsyncIterator[Any]:
    """A gateway over HTTP in front of the s2c server reached as ``downstream``."""
    if downstream == "http-legacy":
        async with http_server(S2C_SERVER, "streamable-http") as server:
            spec = mv.HttpSpec(name="s", url=server.url, protocol="legacy")
            async with http_gateway(mv.SupervisorSpec([spec], **spec_fields)) as gw:
                yield gw
        return
    protocol = "legacy" if downstream == "stdio-legacy" else "2026-07-28"
    async with http_gateway(mv.SupervisorSpec([s2c_stdio(protocol)], **spec_fields)) as gw:
        yield gw


@pytest.mark.parametrize("downstream", DOWNSTREAMS)
@pytest.mark.parametrize("mode", ERAS)
async def test_a_sampling_request_answered_by_the_gateway_client(
    mode: str, downstream: str
) -> None:
    """#17's acceptance: a server's sampling request, answered by the gateway's client; and
    its elicitation and roots questions the same way."""
    caller = Caller()
    with trio.fail_after(GATEWAY_TIMEOUT):
        async with (
            fronting(downstream) as gw,
            Client(gw.mcp_url, mode=mode, **caller.callbacks()) as client,
        ):
            sampled = await client.call_tool("ask_model", {"prompt": "hello"})
            assert text(sampled) == "client says hello"
            asked = await client.call_tool("ask_user", {"question": "the answer?"})
            assert text(asked) == "accept:client-42"
            roots = await client.call_tool("roots", {})
            assert roots.structured_content == {"result": ["file:///work/project"]}
            # The gateway still answers calls that ask nothing, between and after.
            again = await client.call_tool("ask_model", {"prompt": "again"})
            assert text(again) == "client says again"
    assert caller.asked == ["sampling hello", "elicitation the answer?", "roots", "sampling again"]


@pytest.mark.parametrize("downstream", DOWNSTREAMS)
@pytest.mark.parametrize("mode", ERAS)
async def test_a_client_without_handlers_gets_a_clean_error(mode: str, downstream: str) -> None:
    with trio.fail_after(GATEWAY_TIMEOUT):
        async with fronting(downstream) as gw, Client(gw.mcp_url, mode=mode) as client:
            # The downstream server gets an error naming what is missing, and passes it on.
            with pytest.raises(MCPError, match="did not declare the sampling capability"):
                await client.call_tool("ask_model", {"prompt": "hello"})
            # Nothing was left behind: the next call is served.
            assert (await client.call_tool("client_capabilities", {})).is_error is False


ASKER = Path(__file__).with_name("asker.py")


@asynccontextmanager
async def fronting_asker(downstream: str) -> AsyncIterator[Any]:
    """A gateway over HTTP in front of tests/gateway/asker.py, over stdio or HTTP (2025 era)."""
    if downstream == "http-legacy":
        async with http_server(ASKER, "streamable-http") as server:
            spec = mv.HttpSpec(name="a", url=server.url, protocol="legacy")
            async with http_gateway(mv.SupervisorSpec([spec])) as gw:
                yield gw
        return
    spec = mv.StdioSpec(name="a", command=sys.executable, args=[str(ASKER)], protocol="legacy")
    async with http_gateway(mv.SupervisorSpec([spec])) as gw:
        yield gw


@pytest.mark.parametrize("downstream", ["stdio-legacy", "http-legacy"])
async def test_a_server_taking_its_question_back_cancels_it_at_the_client(
    downstream: str,
) -> None:
    """Server -> client cancellation: the downstream cancels its sampling request, so the
    gateway cancels the one it relayed, and the client's callback is cancelled."""
    started, cancelled = trio.Event(), trio.Event()
    client: Client

    async def sampling(
        context: ClientRequestContext, params: types.CreateMessageRequestParams
    ) -> types.CreateMessageResult:
        started.set()
        try:
            await client.call_tool("release", {})
            await trio.sleep_forever()
        finally:
            cancelled.set()
        raise AssertionError("unreachable")

    with trio.fail_after(GATEWAY_TIMEOUT):
        async with (
            fronting_asker(downstream) as gw,
            Client(gw.mcp_url, mode="legacy", sampling_callback=sampling) as client,
        ):
            result = await client.call_tool("ask_then_cancel", {})
            assert text(result) == "taken back"
            assert started.is_set()
            await cancelled.wait()


async def test_two_candidate_clients_for_an_unroutable_server_are_refused() -> None:
    """A 2025-era stdio downstream cannot say which call asked: with two clients' calls in
    flight, the gateway refuses rather than asking the wrong user."""
    first, second = Caller("first"), Caller("second")
    first_asked, second_done = trio.Event(), trio.Event()

    async def first_sampling(
        context: ClientRequestContext, params: types.CreateMessageRequestParams
    ) -> types.CreateMessageResult:
        first_asked.set()
        await second_done.wait()
        return await first.sampling(context, params)

    out: dict[str, str] = {}
    with trio.fail_after(GATEWAY_TIMEOUT):
        async with (
            fronting("stdio-legacy") as gw,
            Client(gw.mcp_url, mode="legacy", sampling_callback=first_sampling) as a,
            Client(gw.mcp_url, mode="legacy", **second.callbacks()) as b,
        ):

            async def call_first() -> None:
                out["first"] = text(await a.call_tool("ask_model", {"prompt": "one"}))

            async with trio.open_nursery() as nursery:
                nursery.start_soon(call_first)
                await first_asked.wait()
                with pytest.raises(MCPError, match="cannot tell which of its 2 clients"):
                    await b.call_tool("ask_model", {"prompt": "two"})
                second_done.set()
            # Alone again, the second client is asked.
            alone = await b.call_tool("ask_model", {"prompt": "three"})
            assert text(alone) == "second says three"
    assert out["first"] == "first says one"
    assert second.asked == ["sampling three"]


@pytest.mark.parametrize("downstream", ["stdio-legacy", "stdio-2026"])
async def test_a_parked_2026_call_expires_and_a_late_retry_is_refused(downstream: str) -> None:
    """A 2026-era client that never answers frees the parked call after the handlers'
    timeout: the downstream call is given up and the token is refused afterwards."""
    handlers = mv.ClientHandlers(timeout=1.0)
    caller = Caller()
    with trio.fail_after(GATEWAY_TIMEOUT):
        async with (
            fronting(downstream, handlers=handlers) as gw,
            Client(gw.mcp_url, mode="2026-07-28", **caller.callbacks()) as client,
        ):
            asking = gw.gateway.asking
            first = await client.session.call_tool(
                "ask_model", {"prompt": "hello"}, allow_input_required=True
            )
            assert isinstance(first, types.InputRequiredResult), first
            assert first.input_requests and first.request_state
            (key, request), *_ = first.input_requests.items()
            assert isinstance(request, types.CreateMessageRequest)
            # The token is bound to its method and name.
            with pytest.raises(MCPError, match="request_state belongs to tools/call 'ask_model'"):
                await client.session.call_tool(
                    "roots", {}, request_state=first.request_state, allow_input_required=True
                )
            await wait_for(lambda: not asking._parked and not asking._inflight)
            answer = await caller.sampling(None, request.params)  # type: ignore[arg-type]
            with pytest.raises(MCPError, match="unknown or expired"):
                await client.session.call_tool(
                    "ask_model",
                    {"prompt": "hello"},
                    input_responses={key: answer},
                    request_state=first.request_state,
                    allow_input_required=True,
                )
            # The gateway and the downstream session are fine: a whole exchange works.
            again = await client.call_tool("ask_model", {"prompt": "again"})
            assert text(again) == "client says again"


def asker_stdio(protocol: str) -> mv.StdioSpec:
    return mv.StdioSpec(name="a", command=sys.executable, args=[str(ASKER)], protocol=protocol)


async def test_questions_asked_together_go_to_a_2026_client_in_one_round() -> None:
    """A 2026 downstream asks two questions in one round; the gateway's 2026 client gets
    both in one InputRequiredResult, under the downstream's own keys."""
    caller = Caller()
    with trio.fail_after(GATEWAY_TIMEOUT):
        async with (
            http_gateway(mv.SupervisorSpec([asker_stdio("2026-07-28")])) as gw,
            Client(gw.mcp_url, mode="2026-07-28", **caller.callbacks()) as client,
        ):
            first = await client.session.call_tool(
                "ask_both", {"topic": "trio"}, allow_input_required=True
            )
            assert isinstance(first, types.InputRequiredResult), first
            requests = first.input_requests or {}
            # The SDK's server names a round's questions by resolver; the gateway keeps them.
            assert sorted(requests) == ["__main__:_elicit", "__main__:_sample"]
            kinds = sorted(type(r).__name__ for r in requests.values())
            assert kinds == ["CreateMessageRequest", "ElicitRequest"]
            answers: dict[str, Any] = {}
            for key, request in requests.items():
                if isinstance(request, types.CreateMessageRequest):
                    answers[key] = await caller.sampling(None, request.params)  # type: ignore[arg-type]
                else:
                    answers[key] = await caller.elicitation(None, request.params)  # type: ignore[arg-type]
            done = await client.session.call_tool(
                "ask_both",
                {"topic": "trio"},
                input_responses=answers,
                request_state=first.request_state,
                allow_input_required=True,
            )
            assert isinstance(done, types.CallToolResult), done
            assert text(done) == "client says trio / client-42"
            # Each round's state is good once: replaying it is refused.
            with pytest.raises(MCPError, match="unknown or expired"):
                await client.session.call_tool(
                    "ask_both",
                    {"topic": "trio"},
                    input_responses=answers,
                    request_state=first.request_state,
                    allow_input_required=True,
                )
            # Answers sent ahead of the questions (a stateless first request) are taken.
            ahead = await client.session.call_tool(
                "ask_both", {"topic": "ahead"}, input_responses=answers, allow_input_required=True
            )
            assert isinstance(ahead, types.CallToolResult), ahead
            assert text(ahead) == "client says trio / client-42"
            # And the SDK's own driver does the same by itself.
            driven = await client.call_tool("ask_both", {"topic": "anyio"})
            assert text(driven) == "client says anyio / client-42"


@pytest.mark.parametrize("mode", ERAS)
async def test_a_prompt_that_samples_while_rendering(mode: str) -> None:
    """prompts/get is relayed like tools/call: the question reaches the client whose
    request it is (a 2026 client through an input-required round)."""
    caller = Caller()
    with trio.fail_after(GATEWAY_TIMEOUT):
        async with (
            http_gateway(mv.SupervisorSpec([asker_stdio("legacy")])) as gw,
            Client(gw.mcp_url, mode=mode, **caller.callbacks()) as client,
        ):
            prompt = await client.get_prompt("pitch", {"topic": "supervision"})
            content = prompt.messages[0].content
            assert isinstance(content, types.TextContent)
            assert content.text == "Pitch: client says supervision"
    assert caller.asked == ["sampling supervision"]
