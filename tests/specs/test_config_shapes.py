"""The config files MCP hosts write load unchanged into the specs they describe."""

from __future__ import annotations

from pathlib import Path

import pytest
from structlog.testing import capture_logs

from mcpvisor.specs import (
    Backoff,
    HttpSpec,
    RestartPolicy,
    SseSpec,
    StdioSpec,
    SupervisorSpec,
    Timeouts,
)
from mcpvisor.specs.config import load_config

CONFIGS = Path(__file__).parent.parent / "configs"
EXAMPLES = Path(__file__).parent.parent.parent / "examples"


def test_claude_desktop_expands_home_and_skips_disabled_servers() -> None:
    spec = load_config(CONFIGS / "claude_desktop_config.json", environ={"HOME": "/home/ada"})

    assert spec == SupervisorSpec(
        [
            StdioSpec(
                name="filesystem",
                command="npx",
                args=[
                    "-y",
                    "@modelcontextprotocol/server-filesystem",
                    "/home/ada/Desktop",
                    "/home/ada/Downloads",
                ],
            ),
            StdioSpec(
                name="github",
                command="npx",
                args=["-y", "@modelcontextprotocol/server-github"],
                env={"GITHUB_PERSONAL_ACCESS_TOKEN": "ghp_SENTINEL_claude_token"},
            ),
            StdioSpec(
                name="memory", command="npx", args=["-y", "@modelcontextprotocol/server-memory"]
            ),
        ]
    )


def test_a_disabled_server_is_not_even_checked() -> None:
    spec = load_config(
        {
            "mcpServers": {
                "broken": {"disabled": True, "command": 3, "args": ["${UNSET}"]},
                "ok": {"command": "x"},
            }
        },
        environ={},
    )
    assert spec.names == ("ok",)


def test_cursor_infers_transports_from_urls_and_ignores_host_keys() -> None:
    environ = {"STRIPE_SECRET_KEY": "sk_SENTINEL", "DATABASE_URL": "postgresql://localhost/db"}
    with capture_logs() as logs:
        spec = load_config(CONFIGS / "cursor_mcp.json", environ=environ)

    assert spec == SupervisorSpec(
        [
            HttpSpec(
                name="stripe",
                url="https://mcp.stripe.com",
                headers={"Authorization": "Bearer sk_SENTINEL"},
            ),
            StdioSpec(
                name="postgres",
                command="npx",
                args=["-y", "@modelcontextprotocol/server-postgres", "postgresql://localhost/db"],
            ),
            SseSpec(name="legacy-events", url="http://localhost:8931/sse"),
            HttpSpec(name="docs", url="https://docs.example.com/mcp"),
        ]
    )
    unknown = [(e["server"], e["key"]) for e in logs if e["event"] == "config.unknown_key"]
    assert unknown == [
        ("postgres", "autoApprove"),
        ("docs", "description"),
        ("docs", "alwaysAllow"),
    ]
    assert all(e["log_level"] == "warning" for e in logs)


def test_vscode_with_comments_inputs_trailing_commas_and_env_file() -> None:
    environ = {"GITHUB_TOKEN": "gho_SENTINEL"}
    with capture_logs() as logs:
        spec = load_config(CONFIGS / "vscode_mcp.json", environ=environ)

    assert spec == SupervisorSpec(
        [
            StdioSpec(name="fetch", command="uvx", args=["mcp-server-fetch"]),
            HttpSpec(
                name="github",
                url="https://api.githubcopilot.com/mcp/",
                headers={"Authorization": "Bearer gho_SENTINEL"},
            ),
            SseSpec(name="playwright", url="http://localhost:8931/events"),
            StdioSpec(
                name="my-python-server",
                command="python",
                args=["server.py", "--port=8080"],
                cwd="/srv/project",
            ),
        ]
    )
    events = [(e["event"], e.get("key")) for e in logs]
    assert events == [("config.env_file_ignored", None), ("config.unknown_key", "dev")]
    assert logs[0]["server"] == "my-python-server"


def test_vscode_settings_nest_servers_under_mcp() -> None:
    spec = load_config({"mcp": {"servers": {"fetch": {"type": "stdio", "command": "uvx"}}}})
    assert spec == SupervisorSpec([StdioSpec(name="fetch", command="uvx")])


def test_fastmcp_transport_key() -> None:
    spec = load_config(CONFIGS / "fastmcp_config.json", environ={})

    assert spec == SupervisorSpec(
        [
            HttpSpec(name="weather", url="https://weather-api.example.com/mcp"),
            StdioSpec(
                name="assistant",
                command="python",
                args=["./assistant_server.py"],
                env={"DEBUG": "true", "LOG_LEVEL": "info"},
                cwd="/opt/assistant",
            ),
            SseSpec(name="notifications", url="https://notify.example.com/stream"),
            HttpSpec(name="search", url="https://search.example.com/mcp/"),
        ]
    )


@pytest.mark.parametrize(
    ("entry", "kind"),
    [
        ({"url": "http://h/sse"}, SseSpec),
        ({"url": "http://h/sse/"}, SseSpec),
        ({"url": "http://h/v1/sse?key=1"}, SseSpec),
        ({"url": "http://h/mcp"}, HttpSpec),
        ({"url": "http://h/sse-bridge/mcp"}, HttpSpec),
        ({"url": "http://h/sse", "type": "http"}, HttpSpec),
        ({"url": "http://h/sse", "transport": "streamable-http"}, HttpSpec),
        ({"url": "http://h/sse", "type": "streamableHttp"}, HttpSpec),
        ({"url": "http://h/mcp", "transport": "sse"}, SseSpec),
        ({"url": "http://h/mcp", "type": "sse", "transport": "sse"}, SseSpec),
        ({"url": "${BASE}/sse"}, SseSpec),
        ({"command": "x", "type": "stdio", "transport": "stdio"}, StdioSpec),
    ],
)
def test_transport_choice(entry: dict[str, object], kind: type) -> None:
    spec = load_config({"mcpServers": {"s": entry}}, environ={"BASE": "https://h"})
    assert type(spec["s"]) is kind


def test_toml_with_mcpvisor_defaults_merged_field_by_field() -> None:
    spec = load_config(
        CONFIGS / "mcpvisor.toml", environ={"INDEX_TOKEN": "idx_SENTINEL", "RANKER_KEY": "rk"}
    )

    restart = RestartPolicy(max_restarts=10, within=300, backoff=Backoff(initial=1, max=60))
    assert spec == SupervisorSpec(
        [
            StdioSpec(
                name="files",
                command="npx",
                args=["-y", "@modelcontextprotocol/server-filesystem", "/srv/data"],
                required=True,
                start="eager",
                idle_shutdown=1e9,
                restart=RestartPolicy(
                    max_restarts=10,
                    within=300,
                    backoff=Backoff(initial=1, max=60, jitter=0.0),
                ),
            ),
            StdioSpec(
                name="index",
                command="uvx",
                args=["mcp-index-server"],
                group="search",
                env={"INDEX_TOKEN": "idx_SENTINEL"},
                timeouts=Timeouts(initialize=90, probe_interval=30),
                start="lazy",
                idle_shutdown=300,
                restart=restart,
            ),
            HttpSpec(
                name="ranker",
                url="https://ranker.internal:8443/mcp",
                group="search",
                headers={"X-Api-Key": "rk"},
                max_concurrency=8,
                start="lazy",
                idle_shutdown=300,
                restart=restart,
            ),
        ],
        groups={"search": "one_for_all"},
    )
    assert isinstance(spec["files"].restart.within, float)  # TOML's 300 becomes 300.0


def test_codex_toml_mcp_servers() -> None:
    with capture_logs() as logs:
        spec = load_config(CONFIGS / "codex_config.toml")
    assert spec == SupervisorSpec(
        [
            StdioSpec(name="context7", command="npx", args=["-y", "@upstash/context7-mcp"]),
            HttpSpec(name="figma", url="https://mcp.figma.com/mcp"),
        ]
    )
    assert [e["key"] for e in logs] == ["bearer_token_env_var"]


def test_probe_interval_null_turns_probing_off() -> None:
    spec = load_config(
        {"mcpServers": {"s": {"command": "x", "timeouts": {"probe_interval": None}}}}
    )
    assert spec["s"].timeouts.probe_interval is None


def test_server_keys_override_defaults_and_null_overrides_too() -> None:
    spec = load_config(
        {
            "mcpvisor": {"defaults": {"idle_shutdown": 60, "timeouts": {"request": 5}}},
            "mcpServers": {
                "a": {"command": "x", "idle_shutdown": None, "timeouts": {"connect": 1}},
                "b": {"command": "x"},
            },
        }
    )
    assert spec["a"].idle_shutdown is None
    assert spec["a"].timeouts == Timeouts(connect=1, request=5)
    assert spec["b"].idle_shutdown == 60
    assert spec["b"].timeouts == Timeouts(request=5)


def test_an_empty_server_section_is_an_empty_supervisor() -> None:
    assert load_config({"mcpServers": {}}) == SupervisorSpec([])


def test_unknown_key_warning_suggests_but_never_logs_values() -> None:
    with capture_logs() as logs:
        load_config({"mcpServers": {"s": {"command": "x", "timeout": "tok_SENTINEL"}}})
    (event,) = logs
    assert event == {
        "event": "config.unknown_key",
        "log_level": "warning",
        "server": "s",
        "key": "timeout",
        "path": "mcpServers.s.timeout",
        "did_you_mean": "timeouts",
    }


def test_the_claude_desktop_example_loads_with_secrets_masked(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HOME", "/home/ada")
    monkeypatch.delenv("LINEAR_API_KEY", raising=False)

    spec = load_config(EXAMPLES / "claude_desktop_config.json")

    assert spec.names == ("filesystem", "github", "linear")
    filesystem = spec["filesystem"]
    assert isinstance(filesystem, StdioSpec)
    assert filesystem.args[-2:] == ("/home/ada/Desktop", "/home/ada/Downloads")
    assert spec.groups == {"workspace": "one_for_one"}
    text = repr(spec)
    assert "ghp_example" not in text
    assert "lin_api_example" not in text
    assert "'GITHUB_PERSONAL_ACCESS_TOKEN': '***'" in text
    assert "'Authorization': '***'" in text
