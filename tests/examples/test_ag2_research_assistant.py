"""The article-000 research assistant on AG2 and mcpvisor: routing, lazy start, isolation."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

from examples_support import load_example

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "adapters"))
from ag2_models import ScriptedConfig

import mcpvisor as mv
import mcpvisor.aio


def test_routing_on_demand_sessions_and_a_crash() -> None:
    example = load_example("ag2_research_assistant")
    assert example.route("recent papers about LLMs") == "arxiv"
    assert example.route("the wiki article on Erlang") == "wikipedia"

    async def main() -> None:
        async with mcpvisor.aio.open_supervisor(example.servers()) as client:
            assert example.health(client) == {"arxiv": "stopped", "wikipedia": "stopped"}

            count = ScriptedConfig("arxiv__word_count", '{"text": "supervision trees for agents"}')
            assert await example.ask(client, "count words in this paper title", count) == "4"
            assert example.health(client) == {"arxiv": "active", "wikipedia": "stopped"}

            echo = ScriptedConfig("wikipedia__echo", '{"text": "Erlang"}')
            answer = await example.ask(client, "the wiki article?", echo, isolated=True)
            assert answer == "Erlang"
            # The session per query is gone, and the lazy server itself never started.
            assert example.health(client) == {"arxiv": "active", "wikipedia": "stopped"}

            pid = client.status().servers["arxiv"].pid
            async with client.subscribe() as events:
                os.kill(pid, signal.SIGKILL)
                async with asyncio.timeout(30):
                    async for event in events:
                        if isinstance(event, mv.LifecycleEvent) and event.server == "arxiv":
                            break
            again = ScriptedConfig("arxiv__word_count", '{"text": "let it crash"}')
            assert await example.ask(client, "and this research title?", again) == "3"
            arxiv = client.status().servers["arxiv"]
            assert (arxiv.restarts, arxiv.state) == (1, mv.ServerState.ACTIVE)
            assert arxiv.pid != pid

    asyncio.run(main())
