"""``mcpvisor config dump`` prints the effective config with secrets masked, and
``mcpvisor config schema`` a JSON Schema that real host configs (and every dump) satisfy."""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from cli_support import cli_env
from hypothesis import HealthCheck, given, settings

import mcpvisor as mv
from mcpvisor.specs._config_files import strip_jsonc
from mcpvisor.specs.config import dump_config
from mcpvisor.specs.schema import config_schema
from tests.strategies import supervisor_specs

CONFIGS = Path(__file__).parent.parent / "configs"
BAD = CONFIGS / "bad"
SECRETS = [
    "dbpw-SENTINEL-1",
    "env-SENTINEL-2",
    "tok-SENTINEL-3",
    "query-SENTINEL-4",
    "pw-SENTINEL-5",
]


def _run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mcpvisor", "config", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**cli_env(), **(env or {})},
        stdin=subprocess.DEVNULL,
    )


def _read(path: Path) -> Any:
    if path.suffix == ".toml":
        return tomllib.loads(path.read_text())
    return json.loads(strip_jsonc(path.read_text()))


def test_dump_merges_defaults_and_masks_every_secret(tmp_path: Path) -> None:
    config = {
        "mcpServers": {
            "db": {
                "command": "npx",
                "args": ["-y", "pg-server", "postgresql://app:${DB_PASSWORD}@db/app"],
                "env": {"API_TOKEN": "env-SENTINEL-2"},
                "timeouts": {"connect": 20},
            },
            "web": {
                "url": "https://app:pw-SENTINEL-5@h.example/mcp?key=query-SENTINEL-4",
                "headers": {"Authorization": "Bearer tok-SENTINEL-3"},
                "restart": {"max_restarts": 2},
            },
        },
        "mcpvisor": {
            "defaults": {"timeouts": {"request": 120}, "protocol": "legacy"},
            "groups": {"g": "one_for_all"},
        },
    }
    path = tmp_path / "mcp.json"
    path.write_text(json.dumps(config))
    done = _run("dump", str(path), env={"DB_PASSWORD": SECRETS[0]})
    assert done.returncode == 0, done.stderr
    for secret in SECRETS:
        assert secret not in done.stdout + done.stderr
    dumped = json.loads(done.stdout)
    db, web = dumped["mcpServers"]["db"], dumped["mcpServers"]["web"]
    assert db["args"][-1] == "postgresql://app:***@db/app"
    assert db["env"] == {"API_TOKEN": "***"}
    assert web["headers"] == {"Authorization": "Bearer ***"}
    assert web["url"] == "https://h.example/mcp?key=***"
    # Effective: the defaults section merged in, and every built-in default written out.
    assert db["timeouts"] == {**web["timeouts"], "connect": 20.0}
    assert db["timeouts"]["request"] == web["timeouts"]["request"] == 120.0
    assert db["protocol"] == web["protocol"] == "legacy"
    assert web["restart"]["max_restarts"] == 2 and db["restart"]["max_restarts"] == 5
    assert db["restart"]["backoff"] == {
        "initial": 0.5,
        "max": 30.0,
        "multiplier": 2.0,
        "jitter": 0.5,
    }
    assert dumped["mcpvisor"] == {"groups": {"g": "one_for_all"}}
    # What is printed is still a config, with the same supervision.
    again = mv.load_config(dumped)
    original = mv.load_config(config, environ={"DB_PASSWORD": SECRETS[0]})
    for name in ("db", "web"):
        assert again[name].restart == original[name].restart
        assert again[name].timeouts == original[name].timeouts


def test_dump_of_a_bad_config_is_a_config_error(tmp_path: Path) -> None:
    done = _run("dump", str(BAD / "jitter_as_percent.json"))
    assert done.returncode == 2
    assert "jitter" in done.stderr


def test_schema_is_valid_and_accepts_real_host_configs() -> None:
    done = _run("schema")
    assert done.returncode == 0, done.stderr
    schema = json.loads(done.stdout)
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    good = [
        p
        for p in CONFIGS.iterdir()
        if p.is_file() and not p.name.startswith(("broken_", "duplicate_"))
    ]
    assert len(good) >= 6
    for path in good:
        errors = [e.message for e in validator.iter_errors(_read(path))]
        assert errors == [], path.name


@pytest.mark.parametrize(
    "name",
    [
        "jitter_as_percent.json",
        "restart_type_typo.json",
        "timeouts_unknown_key.json",
        "defaults_unknown_key.json",
        "group_strategy_typo.json",
        "server_name_with_separator.json",
        "server_name_ending_in_underscore.json",
        "max_restarts_as_string.json",
        "timeouts_with_units.json",
    ],
)
def test_schema_rejects_mistakes_in_mcpvisor_keys(name: str) -> None:
    validator = jsonschema.Draft202012Validator(config_schema())
    assert list(validator.iter_errors(_read(BAD / name))), name


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(supervisor_specs(max_servers=3))
def test_every_dump_satisfies_the_schema(spec: mv.SupervisorSpec) -> None:
    validator = jsonschema.Draft202012Validator(config_schema())
    for document in (dump_config(spec), dump_config(spec, defaults=True)):
        assert [e.message for e in validator.iter_errors(document)] == []
