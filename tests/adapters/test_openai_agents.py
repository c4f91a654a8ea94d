"""The Agents SDK's own run loop on supervised servers, with a scripted model (no network)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from adapters_support import kill_and_wait_for_failure
from agents import Agent, RunConfig, Runner
from agents_models import ScriptedModel
from aio_support import recording_spec, run

import mcpvisor as mv
import mcpvisor.aio
from mcpvisor.adapters.openai_agents import SupervisedMCPServer, mcp_servers

NO_TRACING = RunConfig(tracing_disabled=True)


def test_the_agent_loop_calls_through_mcpvisor_and_survives_a_sigkill(tmp_path: Path) -> None:
    spec = mv.SupervisorSpec(servers=[recording_spec(tmp_path / "record")])

    async def main() -> None:
        async with mcpvisor.aio.open_supervisor(spec) as client:
            model = ScriptedModel("pid", {})
            agent = Agent(name="assistant", model=model, mcp_servers=mcp_servers(client))
            first = await Runner.run(agent, "which process are you?", run_config=NO_TRACING)
            pid = int(first.final_output)
            assert pid == client.status().servers["rec"].pid
            assert model.offered[0] == ["echo", "fail", "hang", "meta", "pid"]

            assert await kill_and_wait_for_failure(client, "rec") == pid
            # No reconnect(): the next turn's call waits for the automatic restart.
            second = await Runner.run(agent, "and now?", run_config=NO_TRACING)
            assert int(second.final_output) not in (pid, 0)
            assert client.status().servers["rec"].restarts == 1

    run(main())


def test_a_server_that_is_down_is_a_tool_error_not_the_end_of_the_run(tmp_path: Path) -> None:
    spec = mv.SupervisorSpec(
        servers=[recording_spec(tmp_path / "record"), recording_spec(tmp_path / "r2", "two")]
    )

    async def main() -> None:
        async with mcpvisor.aio.open_supervisor(spec) as client:
            both = SupervisedMCPServer(
                client,
                ["rec", "two"],
                tool_filter={
                    "allowed_tool_names": ["rec__echo", "two__echo", "two__pid"],
                    "blocked_tool_names": ["two__pid"],
                },
            )
            model = ScriptedModel("two__echo", {"text": "hello"})
            agent = Agent(name="assistant", model=model, mcp_servers=[both])
            done = await Runner.run(agent, "say hello", run_config=NO_TRACING)
            assert done.final_output == "hello"
            assert model.offered[0] == ["rec__echo", "two__echo"]

            await client.drop("two")
            # Its tools are gone from the list the model sees...
            assert [t.name for t in await both.list_tools()] == ["rec__echo"]
            # ...and a model that calls one anyway gets told why, and the run completes.
            result = await both.call_tool("two__echo", {"text": "x"})
            assert result.is_error
            assert "'two' is dropped" in result.content[0].text
            unknown = await both.call_tool("nope__echo", {})
            assert unknown.is_error
            # A bare name, as a model that saw one server's tools might send, is pointed at
            # its qualified name; a tool the filter keeps from the model is never suggested.
            bare = await both.call_tool("echo", {"text": "x"})
            assert "did you mean 'rec__echo'?" in bare.content[0].text
            assert "did you mean" not in (await both.call_tool("pid", {})).content[0].text

    run(main())


def test_prompts_resources_and_sdk_settings_pass_through(tmp_path: Path) -> None:
    spec = mv.SupervisorSpec(servers=[recording_spec(tmp_path / "record")])

    async def main() -> None:
        async with mcpvisor.aio.open_supervisor(spec) as client:
            (server,) = mcp_servers(client, require_approval="always", timeout=5)
            model_tools = ["echo", "pid", "hang", "fail", "meta"]
            await server.connect()
            assert server.name == "rec"
            assert server._needs_approval_policy is True
            assert [p.name for p in (await server.list_prompts()).prompts] == ["greet"]
            prompt = await server.get_prompt("greet", {"name": "ada"})
            assert prompt.messages[0].content.text == "hello ada"
            assert [str(r.uri) for r in (await server.list_resources()).resources] == ["mem://note"]
            assert (await server.read_resource("mem://note")).contents[0].text == "hello"
            assert (await server.list_resource_templates()).resource_templates == []
            assert [t.name for t in server.cached_tools or []] == model_tools
            sent = await server.call_tool("meta", {}, meta={"tenant": "acme"})
            assert json.loads(sent.content[0].text)["tenant"] == "acme"
            await server.cleanup()
            assert client.status().servers["rec"].state is mv.ServerState.ACTIVE

    run(main())


def test_importing_without_the_extra_names_it() -> None:
    code = "import sys; sys.modules['agents'] = None\nimport mcpvisor.adapters.openai_agents\n"
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False, timeout=60
    )
    assert done.returncode == 1
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("ImportError: mcpvisor.adapters.openai_agents needs the 'openai-agents'")
    assert "pip install 'mcpvisor[openai-agents]'" in last
