"""``protocol`` (auto | legacy | 2026-07-28) per server and in defaults, in JSON and TOML,
through load and dump, with errors at the path where the value was written."""

from __future__ import annotations

from pathlib import Path

import pytest

from mcpvisor.specs import ConfigError, HttpSpec, StdioSpec, SupervisorSpec
from mcpvisor.specs.config import dump_config, load_config


def test_per_server_values_override_the_default() -> None:
    spec = load_config(
        {
            "mcpServers": {
                "old": {"command": "x"},
                "new": {"url": "https://h/mcp", "protocol": "2026-07-28"},
                "probe": {"command": "y", "protocol": "auto"},
            },
            "mcpvisor": {"defaults": {"protocol": "legacy"}},
        }
    )
    assert [s.protocol for s in spec.servers] == ["legacy", "2026-07-28", "auto"]


def test_toml_files_carry_it(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(
        "[mcpvisor.defaults]\nprotocol = 'legacy'\n\n"
        "[mcp_servers.git]\ncommand = 'uvx'\nargs = ['mcp-server-git']\n\n"
        "[mcp_servers.web]\nurl = 'https://h/mcp'\nprotocol = '2026-07-28'\n"
    )
    spec = load_config(path)
    assert spec["git"].protocol == "legacy"
    assert spec["web"].protocol == "2026-07-28"


def test_dump_writes_it_back() -> None:
    spec = SupervisorSpec(
        [
            StdioSpec(name="a", command="x", protocol="legacy"),
            HttpSpec(name="b", url="https://h/mcp"),
        ]
    )
    dumped = dump_config(spec)
    assert dumped["mcpServers"]["a"]["protocol"] == "legacy"
    assert "protocol" not in dumped["mcpServers"]["b"]  # the default is left out
    assert load_config(dumped) == spec


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        (
            {"mcpServers": {"a": {"command": "x", "protocol": "legacyy"}}},
            "mcpServers.a.protocol: must be one of auto, legacy, 2026-07-28;"
            " did you mean 'legacy'?",
        ),
        (
            {"mcpServers": {"a": {"command": "x"}}, "mcpvisor": {"defaults": {"protocol": "2025"}}},
            "mcpvisor.defaults.protocol: must be one of auto, legacy, 2026-07-28",
        ),
        (
            {"mcpServers": {"a": {"command": "x", "protocol": 2026}}},
            "mcpServers.a.protocol: must be a string",
        ),
    ],
)
def test_errors_name_the_path(config: dict[str, object], expected: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(config)
    assert str(info.value) == expected
