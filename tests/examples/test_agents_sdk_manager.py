"""The article-003 service on the Agents SDK and mcpvisor: health, drop_failed, a crash."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from agents import set_tracing_disabled
from examples_support import load_example

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "adapters"))
from agents_models import ScriptedModel


async def until(client: Any, check: Any, bound: float = 30.0) -> None:
    """Wait, event by event, until ``check(status)`` holds."""
    async with asyncio.timeout(bound), client.subscribe() as events:
        if check(client.status()):
            return
        async for _ in events:
            if check(client.status()):
                return


def test_the_assistant_on_mcpvisor(caplog: pytest.LogCaptureFixture) -> None:
    set_tracing_disabled(True)
    example = load_example("agents_sdk_manager")
    model = ScriptedModel("mcp_files__word_count", {"text": "let it crash"})
    app = example.make_app(example.services(), model)

    async def main() -> None:
        async with app.router.lifespan_context(app):
            client = app.state.mcp
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
                await until(client, lambda s: s.servers["business"].state.value == "failed")
                health = (await http.get("/health/mcp")).json()
                assert health["status"] == "degraded"
                assert health["active"] == ["files", "database", "search"]
                assert health["failed"] == ["business"]
                dropped = (await http.post("/mcp/drop-failed")).json()
                assert dropped == {"dropped": ["business"]}
                assert (await http.get("/health/mcp")).json()["dropped"] == ["business"]

                reply = await http.post("/chat", json={"message": "count these words"})
                assert reply.status_code == 200
                assert reply.json()["response"] == "3"
                assert "mcp_files__word_count" in model.offered[0]
                assert "mcp_search__echo" in model.offered[0]

                # The critical server crashes: no reconnect(), the next chat just works.
                pid = client.status().servers["files"].pid
                os.kill(pid, signal.SIGKILL)

                def restarted(status: Any) -> bool:
                    files = status.servers["files"]
                    return bool(files.restarts == 1 and files.state.value == "active")

                await until(client, restarted)
                reply = await http.post("/chat", json={"message": "again"})
                assert reply.json()["response"] == "3"
                assert client.status().servers["files"].pid != pid

                await client.stop("files")
                assert (await http.get("/health/mcp")).status_code == 503
                assert (await http.post("/chat", json={"message": "x"})).status_code == 503

    with caplog.at_level(logging.INFO, logger="assistant.mcp"):
        asyncio.run(main())
    lines = [r.getMessage() for r in caplog.records if r.name == "assistant.mcp"]
    assert any("server=files active->failed" in line for line in lines), lines
    assert any("server=business" in line and "->dropped" in line for line in lines), lines
