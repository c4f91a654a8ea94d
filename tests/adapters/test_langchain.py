"""LangChain's own agent loop (``create_agent``) on supervised tools, with a scripted model."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from adapters_support import kill_and_wait_for_failure
from aio_support import recording_spec, run
from langchain.agents import create_agent
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, ToolMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from pydantic import Field

import mcpvisor as mv
import mcpvisor.aio
from mcpvisor.adapters.langchain import structured_tools


class ScriptedChatModel(BaseChatModel):
    """Calls ``tool`` once per human turn, then answers with the tool message's content."""

    tool: str
    arguments: dict[str, Any] = Field(default_factory=dict)
    offered: list[list[str]] = Field(default_factory=list)

    @property
    def _llm_type(self) -> str:
        return "scripted"

    def bind_tools(self, tools: Any, **kwargs: Any) -> Any:
        self.offered.append(sorted(t.name for t in tools))
        return self

    def _generate(
        self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **kwargs: Any
    ) -> ChatResult:
        last = messages[-1]
        if isinstance(last, ToolMessage):
            reply = AIMessage(content=f"{last.status}: {last.content}")
        else:
            call = {"name": self.tool, "args": self.arguments, "id": f"call_{len(messages)}"}
            reply = AIMessage(content="", tool_calls=[call])
        return ChatResult(generations=[ChatGeneration(message=reply)])


def _answer(state: dict[str, Any]) -> str:
    return str(state["messages"][-1].content)


def test_create_agent_calls_through_mcpvisor_and_survives_a_sigkill(tmp_path: Path) -> None:
    spec = mv.SupervisorSpec(servers=[recording_spec(tmp_path / "record")])

    async def main() -> None:
        async with mcpvisor.aio.open_supervisor(spec) as client:
            tools = await structured_tools(client, block={"rec": ["hang"]})
            model = ScriptedChatModel(tool="rec__pid")
            agent = create_agent(model, tools)
            first = await agent.ainvoke({"messages": [("user", "which process?")]})
            pid = int(_answer(first).removeprefix("success: "))
            assert pid == client.status().servers["rec"].pid
            assert model.offered[0] == ["rec__echo", "rec__fail", "rec__meta", "rec__pid"]
            tool_message = first["messages"][-2]
            assert tool_message.artifact.content[0].text == str(pid)

            assert await kill_and_wait_for_failure(client, "rec") == pid
            second = await agent.ainvoke({"messages": [("user", "and now?")]})
            assert _answer(second).startswith("success: ")
            assert int(_answer(second).removeprefix("success: ")) != pid
            assert client.status().servers["rec"].restarts == 1

    run(main())


def test_is_error_and_a_down_server_become_error_tool_messages(tmp_path: Path) -> None:
    spec = mv.SupervisorSpec(servers=[recording_spec(tmp_path / "record")])

    async def main() -> None:
        async with mcpvisor.aio.open_supervisor(spec) as client:
            tools = await structured_tools(client, allow={"rec": ["fail", "echo"]})
            assert [t.name for t in tools] == ["rec__echo", "rec__fail"]
            agent = create_agent(ScriptedChatModel(tool="rec__fail"), tools)
            done = await agent.ainvoke({"messages": [("user", "fail please")]})
            assert _answer(done) == "error: it failed"

            await client.stop("rec")
            agent = create_agent(
                ScriptedChatModel(tool="rec__echo", arguments={"text": "x"}), tools
            )
            done = await agent.ainvoke({"messages": [("user", "echo")]})
            assert _answer(done).startswith("error: server 'rec' is stopped")
            assert await structured_tools(client) == []

    run(main())


def test_importing_without_the_extra_names_it() -> None:
    code = "import sys; sys.modules['langchain_core'] = None\nimport mcpvisor.adapters.langchain\n"
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False, timeout=60
    )
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("ImportError: mcpvisor.adapters.langchain needs the 'langchain'")
    assert json.dumps("mcpvisor[langchain]")[1:-1] in last
