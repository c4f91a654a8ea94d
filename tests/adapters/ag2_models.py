"""A scripted AG2 model: no network, no key, AG2's own agent loop around it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ag2.config import LLMClient, ModelConfig
from ag2.events import ModelMessage, ModelResponse, ToolCallEvent, ToolCallsEvent, ToolResultsEvent


class ScriptedClient(LLMClient):
    """Calls ``tool`` for each question, then answers with what the tool returned."""

    def __init__(self, config: ScriptedConfig) -> None:
        self.config = config

    async def __call__(self, messages: Sequence[Any], context: Any, **kwargs: Any) -> Any:
        self.config.offered.append(sorted(t.function.name for t in kwargs.get("tools", ())))
        last = messages[-1]
        if not isinstance(last, ToolResultsEvent):
            self.config.asked += 1
            call = ToolCallEvent(name=self.config.tool, arguments=self.config.arguments)
            return ModelResponse(tool_calls=ToolCallsEvent([call]))
        result = last.results[-1].result
        self.config.metadata.append(result.metadata)
        text = " ".join(str(getattr(p, "content", p)) for p in result.parts)
        message = ModelMessage(text)
        await context.send(message)
        return ModelResponse(message)


class ScriptedConfig(ModelConfig):
    def __init__(self, tool: str, arguments: str = "{}") -> None:
        self.tool = tool
        self.arguments = arguments
        self.asked = 0
        self.offered: list[list[str]] = []
        self.metadata: list[dict[str, Any]] = []

    @property
    def provider(self) -> Any:
        return "scripted"

    @property
    def model(self) -> str:
        return "scripted"

    def copy(self) -> ScriptedConfig:
        return self

    def create(self) -> ScriptedClient:
        return ScriptedClient(self)

    def create_files_client(self) -> Any:
        raise NotImplementedError
