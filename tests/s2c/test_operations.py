"""``request()`` reaches the rest of the client surface with typed arguments: completions,
resource templates, logging levels and one-off subscriptions, by name or as Operation values."""

from __future__ import annotations

import mcp_types as types
import pytest

import mcpvisor as mv
from mcpvisor.specs import UsageError
from mcpvisor.workers.operations import Complete, ListResourceTemplates, SetLoggingLevel
from tests.s2c.support import json_of, stdio_spec


async def test_complete_templates_and_logging_level_through_request() -> None:
    spec = mv.SupervisorSpec([stdio_spec(protocol="legacy")])
    async with mv.open_supervisor(spec) as client:
        by_name = await client.request(
            "s2c",
            "complete",
            {
                "ref": {"type": "ref/prompt", "name": "greet"},
                "argument": {"name": "language", "value": "e"},
            },
        )
        assert isinstance(by_name, types.CompleteResult)
        assert by_name.completion.values == ["english", "esperanto"]
        typed = await client.request(
            "s2c",
            Complete(
                ref=types.ResourceTemplateReference(type="ref/resource", uri="res://items/{name}"),
                argument={"name": "name", "value": "av"},
            ),
        )
        assert typed.completion.values == ["avocado"]

        templates = await client.request("s2c", ListResourceTemplates())
        assert [t.uri_template for t in templates.resource_templates] == ["res://items/{name}"]
        assert [t.uri_template for t in client.catalog("s2c").resource_templates] == [
            "res://items/{name}"
        ]
        read = await client.read_resource("s2c", "res://items/pear")
        assert read.contents[0].text == "item pear"  # type: ignore[union-attr]

        await client.request("s2c", "set_logging_level", {"level": "critical"})
        assert json_of(await client.call_tool("s2c", "state", {}))["level"] == "critical"
        await client.request("s2c", SetLoggingLevel(level="debug"))
        assert json_of(await client.call_tool("s2c", "state", {}))["level"] == "debug"

        async with client.resource_updates() as updates:
            await client.request("s2c", "subscribe_resource", {"uri": "res://counter"})
            assert json_of(await client.call_tool("s2c", "touch", {"uri": "res://counter"}))
            async for update in updates:
                assert update.uri == "res://counter"
                break
            await client.request("s2c", "unsubscribe_resource", {"uri": "res://counter"})
            assert json_of(await client.call_tool("s2c", "state", {}))["subscribed"] == []


@pytest.mark.parametrize(
    ("op", "args", "parameter"),
    [
        (
            "complete",
            {"ref": {"type": "ref/nothing"}, "argument": {"name": "a", "value": ""}},
            "ref",
        ),
        ("complete", {"ref": {"type": "ref/prompt", "name": "greet"}}, "argument"),
        ("set_logging_level", {"level": "chatty"}, "level"),
        ("subscribe_resource", {}, "uri"),
    ],
)
async def test_bad_arguments_are_usage_errors_naming_the_parameter(
    op: str, args: dict[str, object], parameter: str
) -> None:
    spec = mv.SupervisorSpec([stdio_spec(protocol="legacy")])
    async with mv.open_supervisor(spec) as client:
        with pytest.raises(UsageError) as caught:
            await client.request("s2c", op, args)
        assert caught.value.parameter == parameter
        assert caught.value.server == "s2c"
        # The session is untouched.
        assert json_of(await client.call_tool("s2c", "state", {}))["level"] is None
