"""AG2's own agent loop (``Agent.ask``) on a supervised toolkit, with a scripted model."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from adapters_support import kill_and_wait_for_failure
from ag2 import Agent
from ag2_models import ScriptedConfig
from aio_support import recording_spec, run

import mcpvisor as mv
import mcpvisor.aio
from mcpvisor.adapters.ag2 import toolkit


def test_agent_ask_calls_through_mcpvisor_and_survives_a_sigkill(tmp_path: Path) -> None:
    spec = mv.SupervisorSpec(
        servers=[recording_spec(tmp_path / "record"), recording_spec(tmp_path / "r2", "two")]
    )

    async def main() -> None:
        async with mcpvisor.aio.open_supervisor(spec) as client:
            tools = await toolkit(client, allow={"rec": ["pid", "echo"]}, block={"two": ["hang"]})
            config = ScriptedConfig("rec__pid")
            agent = Agent("researcher", config=config, tools=[tools])
            first = await agent.ask("which process?")
            pid = int(first.body or "")
            assert pid == client.status().servers["rec"].pid
            assert config.offered[0] == [
                "rec__echo",
                "rec__pid",
                "two__echo",
                "two__fail",
                "two__meta",
                "two__pid",
            ]
            assert config.metadata[0] == {"mcp_server": "rec", "mcp_tool": "pid", "is_error": False}

            assert await kill_and_wait_for_failure(client, "rec") == pid
            second = await agent.ask("and now?")
            assert int(second.body or "") != pid
            assert client.status().servers["rec"].restarts == 1

    run(main())


def test_errors_reach_the_model_as_results_and_isolated_calls_get_fresh_sessions(
    tmp_path: Path,
) -> None:
    spec = mv.SupervisorSpec(servers=[recording_spec(tmp_path / "record")])

    async def main() -> None:
        async with mcpvisor.aio.open_supervisor(spec) as client:
            shared = client.status().servers["rec"].pid
            fresh = await toolkit(client, isolated=True)
            config = ScriptedConfig("rec__pid")
            reply = await Agent("a", config=config, tools=[fresh]).ask("fresh process?")
            assert int(reply.body or "") != shared
            assert [s for s in client.status().servers] == ["rec"]  # the session is gone

            failing = ScriptedConfig("rec__fail")
            reply = await Agent("a", config=failing, tools=[await toolkit(client)]).ask("fail")
            assert reply.body == "it failed"
            assert failing.metadata[0]["is_error"] is True

            tools = await toolkit(client)
            await client.stop("rec")
            down = ScriptedConfig("rec__echo", '{"text": "x"}')
            reply = await Agent("a", config=down, tools=[tools]).ask("echo")
            assert reply.body is not None and reply.body.startswith("server 'rec' is stopped")
            assert down.metadata[0]["is_error"] is True

    run(main())


def test_importing_without_the_extra_names_it() -> None:
    code = "import sys; sys.modules['ag2'] = None\nimport mcpvisor.adapters.ag2\n"
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False, timeout=60
    )
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("ImportError: mcpvisor.adapters.ag2 needs the 'ag2' extra")
