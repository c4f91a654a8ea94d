"""``${VAR}`` expansion in config strings, its escape, and masking of what it produces."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mcpvisor.specs import ConfigError, HttpSpec, StdioSpec, SupervisorSpec
from mcpvisor.specs._config_vars import VariableError, escape, expand
from mcpvisor.specs.config import load_config

ENV = {"HOME": "/home/ada", "TOKEN": "tok", "EMPTY": ""}


@pytest.mark.parametrize(
    ("text", "expanded"),
    [
        ("${HOME}/data", "/home/ada/data"),
        ("${env:HOME}/data", "/home/ada/data"),
        ("${MISSING:-fallback}", "fallback"),
        ("${env:MISSING:-fallback}", "fallback"),
        ("${MISSING:-}", ""),
        ("${TOKEN:-unused}", "tok"),
        ("${EMPTY:-unused}", ""),  # set-but-empty counts as set
        ("${MISSING:-a:-b c}", "a:-b c"),
        ("Bearer ${TOKEN}", "Bearer tok"),
        ("${HOME}${TOKEN}", "/home/adatok"),
        ("$HOME and $ and $$ and {HOME}", "$HOME and $ and $$ and {HOME}"),
        ("$${HOME}", "${HOME}"),
        ("$$${HOME}", "$${HOME}"),  # only "$${" is an escape: the first "$" stays
        ("no variables", "no variables"),
    ],
)
def test_expand(text: str, expanded: str) -> None:
    assert expand(text, ENV) == expanded


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("${MISSING}", "environment variable 'MISSING' is not set"),
        ("${env:MISSING}", "environment variable 'MISSING' is not set"),
        ("${HOME", "unterminated variable reference: '${' without a closing '}'"),
        ("${}", "unsupported variable reference; use ${NAME}, ${env:NAME} or ${NAME:-default}"),
        ("${1X}", "unsupported variable reference; use ${NAME}, ${env:NAME} or ${NAME:-default}"),
        (
            "${input:api-key}",
            "'${input:api-key}' is a VS Code input, which mcpvisor cannot prompt for;"
            " use ${env:NAME} instead",
        ),
    ],
)
def test_expand_errors(text: str, message: str) -> None:
    with pytest.raises(VariableError) as info:
        expand(text, ENV)
    assert str(info.value) == message


@settings(deadline=None)
@given(st.text())
def test_escape_protects_any_string(text: str) -> None:
    assert expand(escape(text), {}) == text


def test_expansion_is_not_recursive() -> None:
    assert expand("${A}", {"A": "${B}", "B": "no"}) == "${B}"


def test_load_reads_os_environ_at_load_time(monkeypatch: pytest.MonkeyPatch) -> None:
    config = {"mcpServers": {"a": {"command": "${MCPVISOR_TEST_CMD}"}}}
    monkeypatch.setenv("MCPVISOR_TEST_CMD", "first")
    assert load_config(config)["a"] == StdioSpec(name="a", command="first")
    monkeypatch.setenv("MCPVISOR_TEST_CMD", "second")
    assert load_config(config)["a"] == StdioSpec(name="a", command="second")
    monkeypatch.delenv("MCPVISOR_TEST_CMD")
    with pytest.raises(ConfigError):
        load_config(config)


def test_every_value_is_expanded_but_not_env_or_header_keys() -> None:
    environ = {"V": "v", "G": "g", "S": "lazy", "T": "http", "U": "https://h"}
    spec = load_config(
        {
            "mcpServers": {
                "a": {
                    "command": "${V}cmd",
                    "args": ["${V}"],
                    "env": {"${V}": "${V}"},
                    "cwd": "/${V}",
                    "group": "${G}",
                    "start": "${S}",
                },
                "b": {"type": "${T}", "url": "${U}/mcp", "headers": {"${V}": "x-${V}"}},
            },
            "mcpvisor": {"groups": {"g": "one_for_one"}},
        },
        environ=environ,
    )
    assert spec == SupervisorSpec(
        [
            StdioSpec(
                name="a",
                command="vcmd",
                args=["v"],
                env={"${V}": "v"},
                cwd="/v",
                group="g",
                start="lazy",
            ),
            HttpSpec(name="b", url="https://h/mcp", headers={"${V}": "x-v"}),
        ],
        groups={"g": "one_for_one"},
    )


def test_an_expanded_number_is_still_a_string() -> None:
    with pytest.raises(ConfigError) as info:
        load_config(
            {"mcpServers": {"a": {"command": "x", "max_concurrency": "${N}"}}}, environ={"N": "4"}
        )
    assert str(info.value) == "mcpServers.a.max_concurrency: must be an integer"


SECRET = "SENTINEL_expanded_secret"


def test_expanded_secrets_are_masked_in_reprs() -> None:
    spec = load_config(
        {
            "mcpServers": {
                "a": {"command": "x", "env": {"TOKEN": "${SECRET}"}},
                "b": {
                    "url": "https://user:${SECRET}@h.example/mcp?key=${SECRET}",
                    "headers": {"Authorization": "Bearer ${SECRET}"},
                },
                "c": {"url": "https://h.example/sse?token=${SECRET}"},
            }
        },
        environ={"SECRET": SECRET},
    )
    assert spec["a"] == StdioSpec(name="a", command="x", env={"TOKEN": SECRET})
    text = repr(spec) + str(spec) + "".join(repr(s) for s in spec.servers)
    assert SECRET not in text
    assert "'https://h.example/mcp?key=***'" in text
    assert "'https://h.example/sse?token=***'" in text
