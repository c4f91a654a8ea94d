"""Real-looking bad config files fail with the right paths and no secret; fuzzed input too.

``tests/configs/bad/`` holds host configs (Claude Desktop, Cursor, VS Code, Codex, mcpvisor
TOML) with the mistakes people make; ``expected.json`` maps each file to the paths its
:class:`ConfigError` must name. Every secret in them contains ``SENTINEL``.
"""

from __future__ import annotations

import json
import re
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import mcpvisor as mv
from mcpvisor.specs.config import load_config

BAD = Path(__file__).parent.parent / "configs" / "bad"
EXPECTED: dict[str, list[str]] = {
    name: paths
    for name, paths in json.loads((BAD / "expected.json").read_text()).items()
    if not name.startswith("_")
}
ENVIRON = {"HOME": "/home/me", "API_KEY": "SENTINEL_environ_api_key"}
SECRET = re.compile(r"[\w:/.-]*SENTINEL[\w-]*")


def test_the_corpus_is_complete() -> None:
    files = sorted(p.name for p in BAD.iterdir() if p.name != "expected.json")
    assert files == sorted(EXPECTED)
    assert len(files) >= 30


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_a_bad_config_names_every_mistake_and_no_secret(name: str) -> None:
    path = BAD / name
    with pytest.raises(mv.ConfigError) as info:
        load_config(path, environ=ENVIRON)
    error = info.value
    paths = ["<file>" if p == str(path) else p for p in error.paths]
    assert sorted(paths) == sorted(EXPECTED[name])
    secrets = set(SECRET.findall(path.read_text())) | {ENVIRON["API_KEY"]}
    assert secrets
    for text in (str(error), repr(error), *(str(p) for p in error.problems)):
        assert "SENTINEL" not in text, f"{name} leaks a secret: {text}"


# -- fuzzing load_config ----------------------------------------------------------------------

SECTION_KEYS = ["mcpServers", "servers", "mcp_servers", "mcpvisor", "mcp", "inputs"]
SERVER_KEYS = [
    "command", "args", "env", "cwd", "url", "headers", "type", "transport", "disabled",
    "required", "group", "restart", "timeouts", "start", "idle_shutdown", "max_concurrency",
    "max_isolated", "protocol", "envFile", "autoApprove",
]  # fmt: skip
NESTED_KEYS = [
    "defaults", "groups", "restart", "max_restarts", "within", "reset_after", "backoff",
    "initial", "max", "multiplier", "jitter", "connect", "initialize", "request", "shutdown",
    "probe_interval", "probe_timeout", "probe_misses",
]  # fmt: skip
WORDS = [
    "npx", "uvx", "stdio", "http", "sse", "streamable-http", "streamableHttp", "permanent",
    "transient", "temporary", "one_for_one", "one_for_all", "rest_for_one", "eager", "lazy",
    "http://127.0.0.1:8000/mcp", "https://h.example/sse", "https://u:p@h:99999/", "ftp://h",
    "legacy", "auto", "2026-07-28", "http://", "${HOME}", "${MISSING}", "${X:-fallback}",
    "${env:HOME}", "$${HOME}", "${",
    "a__b", "", " ", "g",
]  # fmt: skip
FUZZ_SECRET = "SENTINEL-fuzzed-secret"

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats()
    | st.text(max_size=12)
    | st.sampled_from(WORDS)
)
keys = st.sampled_from(SECTION_KEYS + SERVER_KEYS + NESTED_KEYS) | st.text(max_size=8)
json_like = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(keys, children, max_size=5),
    max_leaves=25,
)
# Secrets only ever sit where secrets belong: env and header values, URL credentials.
secret_maps = st.dictionaries(
    st.sampled_from(["TOKEN", "API_KEY", "Authorization"]),
    st.sampled_from([FUZZ_SECRET, f"Bearer {FUZZ_SECRET}", "${HOME}", "${MISSING}"]) | json_like,
    max_size=3,
)
server_values: dict[str, st.SearchStrategy[Any]] = {
    "env": secret_maps,
    "headers": secret_maps,
    "url": st.sampled_from([f"https://user:{FUZZ_SECRET}@h.example/mcp"]) | json_like,
}
servers = st.dictionaries(
    st.sampled_from(["files", "github", "a__b", "x.y", ""]) | st.text(max_size=6),
    st.fixed_dictionaries(
        {},
        optional={key: server_values.get(key, json_like) for key in SERVER_KEYS},
    )
    | json_like,
    max_size=3,
)
configs = st.one_of(
    json_like,
    st.fixed_dictionaries(
        {},
        optional={
            "mcpServers": servers,
            "servers": servers,
            "mcpvisor": st.fixed_dictionaries(
                {},
                optional={
                    "defaults": st.dictionaries(
                        st.sampled_from(SERVER_KEYS + NESTED_KEYS), json_like, max_size=4
                    )
                    | json_like,
                    "groups": st.dictionaries(st.sampled_from(["g", "db", ""]), json_like)
                    | json_like,
                },
            )
            | json_like,
        },
    ),
)


def _load_or_config_error(source: Any) -> None:
    try:
        spec = load_config(source, environ={"HOME": "/home/me", "X": "x"})
    except mv.ConfigError as error:
        assert error.problems
        for text in (str(error), repr(error)):
            assert FUZZ_SECRET not in text, text
        return
    assert isinstance(spec, mv.SupervisorSpec)
    assert FUZZ_SECRET not in repr(spec)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(configs)
def test_load_config_yields_a_spec_or_a_config_error(data: Any) -> None:
    """Any JSON document, as a file or (when it is an object) as a mapping."""
    if isinstance(data, dict):
        _load_or_config_error(data)
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "mcp.json"
        path.write_text(json.dumps(data))
        _load_or_config_error(path)
