"""``max_message_bytes`` is a stdio key in config files: loaded, checked at its path, dumped."""

from __future__ import annotations

import pytest

from mcpvisor.specs import ConfigError, StdioSpec, SupervisorSpec
from mcpvisor.specs.config import dump_config, load_config


def test_it_loads_and_dumps() -> None:
    spec = load_config({"mcpServers": {"media": {"command": "x", "max_message_bytes": 4096}}})
    assert spec["media"].max_message_bytes == 4096  # type: ignore[union-attr]
    assert dump_config(spec)["mcpServers"]["media"]["max_message_bytes"] == 4096
    assert (
        "max_message_bytes"
        not in dump_config(SupervisorSpec([StdioSpec(name="a", command="x")]))["mcpServers"]["a"]
    )


def test_errors_name_the_path() -> None:
    with pytest.raises(ConfigError) as info:
        load_config(
            {
                "mcpServers": {
                    "a": {"command": "x", "max_message_bytes": 10},
                    "b": {"command": "x", "max_message_bytes": "1MB"},
                    "c": {"url": "https://h/mcp", "max_message_bytes": 4096},
                }
            }
        )
    assert sorted(map(str, info.value.problems)) == [
        "mcpServers.a.max_message_bytes: must be an integer >= 1024",
        "mcpServers.b.max_message_bytes: must be an integer",
        "mcpServers.c.max_message_bytes: does not apply to an http server",
    ]
