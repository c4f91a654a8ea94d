"""Operations as values: validated in the caller's task, so a bad call never reaches a session."""

from __future__ import annotations

import math
from typing import Any

import mcp_types as types
import pytest
from hypothesis import given
from hypothesis import strategies as st

from mcpvisor.specs.errors import UsageError
from mcpvisor.workers import (
    OPERATIONS,
    CallTool,
    Complete,
    GetPrompt,
    ListTools,
    Operation,
    Probe,
    ReadResource,
)
from mcpvisor.workers.operations import MAX_JSON_DEPTH, json_value


def nested(depth: int) -> Any:
    value: Any = "leaf"
    for _ in range(depth):
        value = {"k": value}
    return value


def cyclic() -> dict[str, Any]:
    loop: dict[str, Any] = {}
    loop["self"] = loop
    return loop


@pytest.mark.parametrize(
    ("arguments", "problem"),
    [
        ({"text": "\ud83d"}, "lone surrogate"),
        ({1: "x"}, "key of type int"),
        ({"x": object()}, "no JSON form"),
        ({"x": {1, 2}}, "no JSON form"),
        ({"x": math.nan}, "NaN"),
        ({"x": [math.inf]}, "NaN or infinity"),
        (cyclic(), "cycle"),
        ({"deep": nested(MAX_JSON_DEPTH + 5)}, "deeper than"),
    ],
)
def test_arguments_that_json_cannot_carry_are_a_usage_error(arguments: Any, problem: str) -> None:
    with pytest.raises(UsageError) as caught:
        CallTool(name="echo", arguments=arguments)
    assert caught.value.parameter == "arguments"
    assert problem in caught.value.message
    assert caught.value.server is None


def test_meta_is_checked_like_arguments() -> None:
    with pytest.raises(UsageError) as caught:
        CallTool(name="echo", meta={"trace": "\udcff"})
    assert caught.value.parameter == "meta"


def test_arguments_are_copied_so_later_mutation_changes_nothing() -> None:
    arguments: dict[str, Any] = {"items": [1, 2], "nested": {"a": (1, 2)}}
    call = CallTool(name="echo", arguments=arguments)
    arguments["items"].append(3)
    arguments["new"] = True
    assert call.arguments == {"items": [1, 2], "nested": {"a": [1, 2]}}


json_leaf = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
)
json_values = st.recursive(
    json_leaf, lambda inner: st.lists(inner) | st.dictionaries(st.text(), inner), max_leaves=20
)


@given(json_values)
def test_every_json_value_passes_unchanged(value: Any) -> None:
    assert json_value(value, "arguments") == value


def test_operations_know_their_method_target_and_retry_rule() -> None:
    assert OPERATIONS["call_tool"] is CallTool
    assert set(OPERATIONS) >= {
        "list_tools",
        "list_resources",
        "list_resource_templates",
        "list_prompts",
        "call_tool",
        "read_resource",
        "get_prompt",
        "complete",
        "set_logging_level",
        "subscribe_resource",
        "unsubscribe_resource",
        "probe",
    }
    assert all(name == op.name for name, op in OPERATIONS.items())
    assert [name for name, op in OPERATIONS.items() if not op.retry_safe] == ["call_tool"]
    assert CallTool(name="read").target == "read"
    assert (CallTool.name, CallTool.method) == ("call_tool", "tools/call")
    assert ReadResource(uri="memo://x").target == "memo://x"
    assert GetPrompt(name="review").target == "review"
    assert ListTools().target is None
    assert Probe().target is None


def test_from_args_builds_the_named_operation() -> None:
    call = Operation.from_args({"op": "call_tool", "name": "echo", "arguments": {"text": "hi"}})
    assert call == CallTool(name="echo", arguments={"text": "hi"})
    assert OPERATIONS["read_resource"].from_args({"uri": "memo://a"}) == ReadResource(
        uri="memo://a"
    )
    complete = Operation.from_args(
        {
            "op": "complete",
            "ref": {"type": "ref/prompt", "name": "review"},
            "argument": {"name": "code", "value": "x"},
        }
    )
    assert isinstance(complete, Complete)
    assert complete.ref == types.PromptReference(name="review")


@pytest.mark.parametrize(
    ("args", "parameter"),
    [
        ({"op": "explode"}, "op"),
        ({"name": "x"}, "op"),
        ({"op": "call_tool"}, "name"),
        ({"op": "call_tool", "name": "x", "argumnets": {}}, "argumnets"),
        ({"op": "call_tool", "name": 3}, "name"),
        ({"op": "call_tool", "name": "x", "arguments": ["not", "a", "mapping"]}, "arguments"),
        ({"op": "get_prompt", "name": "p", "arguments": {"n": 1}}, "arguments"),
        ({"op": "list_tools", "cache_mode": "sometimes"}, "cache_mode"),
        ({"op": "complete", "ref": {"type": "ref/nothing"}, "argument": {}}, "ref"),
        ({"op": "set_logging_level", "level": "loud"}, "level"),
        ({"op": "read_resource"}, "uri"),
    ],
)
def test_from_args_names_the_bad_parameter(args: dict[str, Any], parameter: str) -> None:
    with pytest.raises(UsageError) as caught:
        Operation.from_args(args)
    assert caught.value.parameter == parameter
    assert isinstance(caught.value, ValueError)


def test_errors_never_repeat_the_value() -> None:
    with pytest.raises(UsageError) as caught:
        CallTool(name="echo", arguments={"token": "sk-secret-value\ud83d"})
    assert "sk-secret-value" not in str(caught.value)
