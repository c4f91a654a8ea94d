"""Resuming an SSE stream through the gateway (Last-Event-ID), one session never seeing another's.

Raw HTTP, because the point is what goes over the wire: the priming event, its retry interval
and what a replay carries when two sessions use the same JSON-RPC request id (so the same
stream name in the SDK).
"""

from __future__ import annotations

import json
from typing import Any

import httpx2
import pytest
import trio

import mcpvisor as mv
from mcpvisor.gateway import HttpSettings
from mcpvisor.specs import UsageError
from tests.gateway.support import GATEWAY_TIMEOUT, http_gateway, raw

VERSION = "2025-11-25"
ACCEPT = {"Accept": "application/json, text/event-stream"}


def events(body: str) -> list[dict[str, Any]]:
    """The SSE events in ``body``: each a dict of its fields, ``data`` parsed when present."""
    found: list[dict[str, Any]] = []
    for block in body.replace("\r\n", "\n").split("\n\n"):
        fields: dict[str, Any] = {}
        for line in block.splitlines():
            name, _, value = line.partition(":")
            fields[name] = value.removeprefix(" ")
        if fields:
            if fields.get("data"):
                fields["data"] = json.loads(fields["data"])
            found.append(fields)
    return found


class Session:
    """One client session of the gateway, spoken to over raw HTTP."""

    def __init__(self, http: httpx2.AsyncClient, url: str) -> None:
        self.http = http
        self.url = url
        self.id = ""

    async def open(self) -> None:
        params = {"protocolVersion": VERSION, "capabilities": {}, "clientInfo": {"name": "t"}}
        opening = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": params}
        reply = await self.post(opening)
        self.id = reply.headers["mcp-session-id"]
        await self.post({"jsonrpc": "2.0", "method": "notifications/initialized"})

    def headers(self) -> dict[str, str]:
        own = {"mcp-session-id": self.id, "mcp-protocol-version": VERSION} if self.id else {}
        return {**ACCEPT, **own}

    async def post(self, body: dict[str, Any]) -> httpx2.Response:
        reply = await self.http.post(self.url, json=body, headers=self.headers())
        assert reply.status_code < 300, reply.text
        return reply

    async def echo(self, text: str) -> list[dict[str, Any]]:
        """Call the raw server's echo tool as request id 2; the events of its POST stream."""
        call = {"name": "echo", "arguments": {"text": text}}
        reply = await self.post({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": call})
        return events(reply.text)

    async def resume(self, last_event_id: str) -> list[dict[str, Any]] | None:
        """The messages a GET with ``Last-Event-ID`` replays, or None if the gateway ended
        the stream without resuming it. A resumed stream replays, then primes itself (an
        event without data) and stays open for what comes next."""
        headers = {**self.headers(), "Last-Event-ID": last_event_id}
        with trio.fail_after(GATEWAY_TIMEOUT):
            async with self.http.stream("GET", self.url, headers=headers) as reply:
                body = ""
                async for chunk in reply.aiter_text():
                    body += chunk
                    found = events(body)
                    ends = [i for i, e in enumerate(found) if e.get("data") == ""]
                    if ends:
                        return found[: ends[0]]
        return None


def texts(found: list[dict[str, Any]]) -> list[str]:
    return [
        c["text"]
        for e in found
        if isinstance(e.get("data"), dict) and "result" in e["data"]
        for c in e["data"]["result"].get("content", [])
    ]


async def test_a_stream_resumes_with_its_own_session_events_only() -> None:
    spec = mv.SupervisorSpec(servers=[raw()])
    async with http_gateway(spec) as gw, httpx2.AsyncClient(timeout=GATEWAY_TIMEOUT) as http:
        alice, bob = Session(http, gw.mcp_url), Session(http, gw.mcp_url)
        await alice.open()
        await bob.open()
        first = await alice.echo("for alice")
        await bob.echo("for bob")
        priming = first[0]
        assert priming["data"] == "" and priming["id"] and priming["retry"] == "1000"
        assert texts(first) == ["for alice"]

        # Both calls were request 2, so the SDK names both streams "2": a replay by name
        # alone would hand alice bob's answer too.
        replayed = await alice.resume(priming["id"])
        assert replayed is not None and texts(replayed) == ["for alice"]
        assert await bob.resume(priming["id"]) is None
        assert await bob.resume("no-such-event") is None


async def test_resumability_can_be_turned_off() -> None:
    spec = mv.SupervisorSpec(servers=[raw()])
    settings = HttpSettings(resume_events=0)
    async with (
        http_gateway(spec, settings=settings) as gw,
        httpx2.AsyncClient(timeout=GATEWAY_TIMEOUT) as http,
    ):
        session = Session(http, gw.mcp_url)
        await session.open()
        found = await session.echo("hi")
        assert texts(found) == ["hi"]
        assert all("retry" not in e for e in found) and all(e.get("data") for e in found)
    with pytest.raises(UsageError, match="resume_events"):
        HttpSettings(resume_events=-1)
