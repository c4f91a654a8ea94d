"""A scripted Agents SDK model: no network, no key, the SDK's own run loop around it."""

from __future__ import annotations

import json
from typing import Any

from agents import Model, ModelResponse, Usage
from openai.types.responses import (
    ResponseFunctionToolCall,
    ResponseOutputMessage,
    ResponseOutputText,
)


class ScriptedModel(Model):
    """Calls ``tool`` with ``arguments`` once, then answers with what the tool returned."""

    def __init__(self, tool: str, arguments: dict[str, Any]) -> None:
        self.tool = tool
        self.arguments = arguments
        self.offered: list[list[str]] = []
        self.calls = 0

    async def get_response(
        self,
        system_instructions: Any,
        input: Any,
        model_settings: Any,
        tools: Any,
        output_schema: Any,
        handoffs: Any,
        tracing: Any,
        **_: Any,
    ) -> ModelResponse:
        self.offered.append(sorted(t.name for t in tools))
        last = input[-1] if isinstance(input, list) else {}
        if isinstance(last, dict) and last.get("type") == "function_call_output":
            text = _text(last["output"])
            message = ResponseOutputMessage(
                id="msg",
                type="message",
                role="assistant",
                status="completed",
                content=[ResponseOutputText(type="output_text", text=text, annotations=[])],
            )
            return ModelResponse(output=[message], usage=Usage(), response_id=None)
        self.calls += 1
        call = ResponseFunctionToolCall(
            type="function_call",
            call_id=f"call_{self.calls}",
            id=f"fc_{self.calls}",
            name=self.tool,
            arguments=json.dumps(self.arguments),
        )
        return ModelResponse(output=[call], usage=Usage(), response_id=None)

    def stream_response(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError


def _text(output: Any) -> str:
    if isinstance(output, str):
        try:
            output = json.loads(output)
        except ValueError:
            return output
    if isinstance(output, dict):
        return str(output.get("text", output))
    if isinstance(output, list):
        return " ".join(_text(item) for item in output)
    return str(output)
