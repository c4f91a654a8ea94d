"""Bad configs fail with one ConfigError naming every problem at its path, and no secrets."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from mcpvisor.specs import ConfigError, InProcessSpec, StdioSpec, SupervisorSpec
from mcpvisor.specs.config import dump_config, load_config

CONFIGS = Path(__file__).parent.parent / "configs"


def _error(config: Any, environ: dict[str, str] | None = None) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        load_config(config, environ=environ or {})
    return info.value


def _servers(**servers: Any) -> dict[str, Any]:
    return {"mcpServers": servers}


BAD_CONFIGS: list[tuple[str, Any, list[str]]] = [
    ("no server section", {"mcpServer": {}}, [""]),
    ("servers not an object", {"mcpServers": ["a"]}, ["mcpServers"]),
    ("two server sections", {"mcpServers": {}, "servers": {}}, [""]),
    ("server not an object", _servers(a="npx"), ["mcpServers.a"]),
    ("neither command nor url", _servers(a={"args": []}), ["mcpServers.a"]),
    ("both command and url", _servers(a={"command": "x", "url": "http://h"}), ["mcpServers.a"]),
    ("stdio type without command", {"servers": {"a": {"type": "stdio"}}}, ["servers.a.command"]),
    ("http type without url", _servers(a={"type": "http"}), ["mcpServers.a.url"]),
    ("unknown type", _servers(a={"type": "websocket", "url": "ws://h"}), ["mcpServers.a.type"]),
    (
        "type and transport disagree",
        _servers(a={"url": "http://h", "type": "http", "transport": "sse"}),
        ["mcpServers.a.transport"],
    ),
    (
        "url on a stdio server",
        _servers(a={"type": "stdio", "command": "x", "url": "http://h"}),
        ["mcpServers.a.url"],
    ),
    ("env on an http server", _servers(a={"url": "http://h", "env": {}}), ["mcpServers.a.env"]),
    ("empty command", _servers(a={"command": "  "}), ["mcpServers.a.command"]),
    ("command not a string", _servers(a={"command": ["npx"]}), ["mcpServers.a.command"]),
    ("args a string", _servers(a={"command": "x", "args": "-y pkg"}), ["mcpServers.a.args"]),
    (
        "an arg not a string",
        _servers(a={"command": "x", "args": ["-p", 80]}),
        ["mcpServers.a.args[1]"],
    ),
    (
        "env value a number",
        _servers(a={"command": "x", "env": {"PORT": 80}}),
        ["mcpServers.a.env.PORT"],
    ),
    ("env not an object", _servers(a={"command": "x", "env": ["A=1"]}), ["mcpServers.a.env"]),
    ("cwd not a string", _servers(a={"command": "x", "cwd": 1}), ["mcpServers.a.cwd"]),
    ("ftp url", _servers(a={"url": "ftp://h/mcp"}), ["mcpServers.a.url"]),
    ("url without host", _servers(a={"url": "http:///mcp"}), ["mcpServers.a.url"]),
    ("url port out of range", _servers(a={"url": "http://h:70000/"}), ["mcpServers.a.url"]),
    (
        "header value not a string",
        _servers(a={"url": "http://h", "headers": {"X": None}}),
        ["mcpServers.a.headers.X"],
    ),
    ("name with __", _servers(a__b={"command": "x"}), ["mcpServers.a__b"]),
    ("name with a dot", _servers(**{"a.b": {"command": "x"}}), ["mcpServers.a.b"]),
    (
        "disabled not a boolean",
        _servers(a={"command": "x", "disabled": "yes"}),
        ["mcpServers.a.disabled"],
    ),
    (
        "required not a boolean",
        _servers(a={"command": "x", "required": 1}),
        ["mcpServers.a.required"],
    ),
    (
        "max_restarts a word",
        _servers(a={"command": "x", "restart": {"max_restarts": "five"}}),
        ["mcpServers.a.restart.max_restarts"],
    ),
    (
        "max_restarts a boolean",
        _servers(a={"command": "x", "restart": {"max_restarts": True}}),
        ["mcpServers.a.restart.max_restarts"],
    ),
    (
        "max_restarts negative",
        _servers(a={"command": "x", "restart": {"max_restarts": -1}}),
        ["mcpServers.a.restart.max_restarts"],
    ),
    (
        "max_restarts a float",
        _servers(a={"command": "x", "restart": {"max_restarts": 2.5}}),
        ["mcpServers.a.restart.max_restarts"],
    ),
    (
        "unknown restart type",
        _servers(a={"command": "x", "restart": {"restart": "always"}}),
        ["mcpServers.a.restart.restart"],
    ),
    (
        "restart not an object",
        _servers(a={"command": "x", "restart": "permanent"}),
        ["mcpServers.a.restart"],
    ),
    (
        "typo in restart",
        _servers(a={"command": "x", "restart": {"max_restart": 3}}),
        ["mcpServers.a.restart.max_restart"],
    ),
    (
        "jitter above 1",
        _servers(a={"command": "x", "restart": {"backoff": {"jitter": 1.5}}}),
        ["mcpServers.a.restart.backoff.jitter"],
    ),
    (
        "backoff max below initial",
        _servers(a={"command": "x", "restart": {"backoff": {"initial": 10, "max": 5}}}),
        ["mcpServers.a.restart.backoff.max"],
    ),
    (
        "multiplier below 1",
        _servers(a={"command": "x", "restart": {"backoff": {"multiplier": 0.5}}}),
        ["mcpServers.a.restart.backoff.multiplier"],
    ),
    (
        "typo in backoff",
        _servers(a={"command": "x", "restart": {"backoff": {"inital": 1}}}),
        ["mcpServers.a.restart.backoff.inital"],
    ),
    (
        "zero timeout",
        _servers(a={"command": "x", "timeouts": {"connect": 0}}),
        ["mcpServers.a.timeouts.connect"],
    ),
    (
        "probe_misses zero",
        _servers(a={"command": "x", "timeouts": {"probe_misses": 0}}),
        ["mcpServers.a.timeouts.probe_misses"],
    ),
    (
        "timeout a string",
        _servers(a={"command": "x", "timeouts": {"request": "60s"}}),
        ["mcpServers.a.timeouts.request"],
    ),
    (
        "typo in timeouts",
        _servers(a={"command": "x", "timeouts": {"initialise": 5}}),
        ["mcpServers.a.timeouts.initialise"],
    ),
    (
        "huge integer timeout",
        _servers(a={"command": "x", "timeouts": {"request": 10**400}}),
        ["mcpServers.a.timeouts.request"],
    ),
    ("bad start mode", _servers(a={"command": "x", "start": "later"}), ["mcpServers.a.start"]),
    (
        "idle_shutdown zero",
        _servers(a={"command": "x", "idle_shutdown": 0}),
        ["mcpServers.a.idle_shutdown"],
    ),
    (
        "max_concurrency zero",
        _servers(a={"command": "x", "max_concurrency": 0}),
        ["mcpServers.a.max_concurrency"],
    ),
    (
        "max_isolated a float",
        _servers(a={"command": "x", "max_isolated": 1.0}),
        ["mcpServers.a.max_isolated"],
    ),
    ("undeclared group", _servers(a={"command": "x", "group": "db"}), ["mcpServers.a.group"]),
    (
        "missing variable",
        _servers(a={"command": "x", "env": {"T": "${TOKEN}"}}),
        ["mcpServers.a.env.T"],
    ),
    ("unterminated variable", _servers(a={"command": "${HOME"}), ["mcpServers.a.command"]),
    (
        "VS Code input variable",
        {"servers": {"a": {"command": "x", "env": {"K": "${input:key}"}}}},
        ["servers.a.env.K"],
    ),
    ("mcpvisor not an object", {"mcpServers": {}, "mcpvisor": []}, ["mcpvisor"]),
    ("typo in mcpvisor", {"mcpServers": {}, "mcpvisor": {"default": {}}}, ["mcpvisor.default"]),
    (
        "typo in defaults",
        {"mcpServers": {}, "mcpvisor": {"defaults": {"retsart": {}}}},
        ["mcpvisor.defaults.retsart"],
    ),
    (
        "bad default with no servers",
        {"mcpServers": {}, "mcpvisor": {"defaults": {"max_isolated": 0}}},
        ["mcpvisor.defaults.max_isolated"],
    ),
    (
        "bad strategy",
        {"mcpServers": {}, "mcpvisor": {"groups": {"g": "all_for_one"}}},
        ["mcpvisor.groups.g"],
    ),
    (
        "bad group name",
        {"mcpServers": {}, "mcpvisor": {"groups": {"a b": "one_for_one"}}},
        ["mcpvisor.groups.a b"],
    ),
]


@pytest.mark.parametrize(
    ("config", "paths"),
    [pytest.param(config, paths, id=case) for case, config, paths in BAD_CONFIGS],
)
def test_bad_config_names_exact_paths(config: Any, paths: list[str]) -> None:
    assert list(_error(config).paths) == paths


def test_three_mistakes_in_three_places_are_reported_together() -> None:
    error = _error(
        _servers(
            github={"command": "npx", "restart": {"backoff": {"jitter": 2}}},
            web={"url": "https://h/mcp", "max_concurrency": "many"},
            files={"command": "npx", "timeouts": {"connect": -1}},
        )
    )
    assert str(error) == (
        "3 problems:\n"
        "  - mcpServers.github.restart.backoff.jitter: must be between 0 and 1\n"
        "  - mcpServers.web.max_concurrency: must be an integer\n"
        "  - mcpServers.files.timeouts.connect: must be a number > 0"
    )


def test_every_problem_in_one_server_is_reported() -> None:
    error = _error(
        _servers(
            a={
                "command": "x",
                "args": [1],
                "required": "yes",
                "restart": {"within": 0, "backoff": {"jitter": -1}},
                "timeouts": {"shutdown": 0},
                "max_isolated": 0,
            }
        )
    )
    assert set(error.paths) == {
        "mcpServers.a.args[0]",
        "mcpServers.a.required",
        "mcpServers.a.restart.within",
        "mcpServers.a.restart.backoff.jitter",
        "mcpServers.a.timeouts.shutdown",
        "mcpServers.a.max_isolated",
    }


def test_unknown_keys_in_mcpvisor_sections_suggest_the_nearest_key() -> None:
    error = _error(_servers(github={"command": "x", "restart": {"max_restart": 3}}))
    assert str(error) == (
        "mcpServers.github.restart.max_restart: unknown key 'max_restart';"
        " did you mean 'max_restarts'?"
    )


def test_choices_suggest_the_nearest_value() -> None:
    error = _error(_servers(a={"command": "x", "restart": {"restart": "transent"}}))
    assert error.problems[0].message == (
        "must be one of permanent, transient, temporary; did you mean 'transient'?"
    )


def test_undeclared_group_suggests_a_declared_one() -> None:
    error = _error(
        {
            "mcpServers": {"a": {"command": "x", "group": "databse"}},
            "mcpvisor": {"groups": {"database": "one_for_all"}},
        }
    )
    assert str(error) == "mcpServers.a.group: unknown group 'databse'; did you mean 'database'?"


def test_a_bad_default_is_reported_once_at_its_own_path() -> None:
    error = _error(
        {
            "mcpvisor": {"defaults": {"restart": {"backoff": {"jitter": 3}}}},
            "mcpServers": {"a": {"command": "x"}, "b": {"command": "y"}},
        }
    )
    assert error.paths == ("mcpvisor.defaults.restart.backoff.jitter",)


def test_a_conflict_between_default_and_server_is_blamed_on_the_server() -> None:
    error = _error(
        {
            "mcpvisor": {"defaults": {"restart": {"backoff": {"initial": 10}}}},
            "mcpServers": {"a": {"command": "x", "restart": {"backoff": {"max": 5}}}},
        }
    )
    assert str(error) == "mcpServers.a.restart.backoff.max: must be >= initial"


def test_missing_variable_names_the_variable_and_path_but_not_the_default() -> None:
    error = _error(_servers(a={"url": "https://h/mcp", "headers": {"Authorization": "${TOK}"}}))
    assert str(error) == "mcpServers.a.headers.Authorization: environment variable 'TOK' is not set"


def test_paths_follow_the_files_own_top_level_key() -> None:
    assert _error({"servers": {"a": {"command": "x", "max_isolated": 0}}}).paths == (
        "servers.a.max_isolated",
    )
    assert _error({"mcp_servers": {"a": {"command": "x", "max_isolated": 0}}}).paths == (
        "mcp_servers.a.max_isolated",
    )


# -- files


def test_invalid_json_names_file_and_line() -> None:
    path = CONFIGS / "broken_syntax.json"
    error = _error(path)
    assert error.paths == (str(path),)
    assert "invalid JSON at line 5, column 7" in str(error)


def test_invalid_toml_names_file_and_line() -> None:
    path = CONFIGS / "broken_syntax.toml"
    error = _error(path)
    assert error.paths == (str(path),)
    assert "invalid TOML" in str(error)
    assert "line 2" in str(error)


def test_duplicate_json_keys_are_problems_not_silent_overwrites() -> None:
    error = _error(CONFIGS / "duplicate_keys.json")
    assert error.paths == ("mcpServers.github.env.GITHUB_TOKEN", "mcpServers.memory")
    assert "SENTINEL" not in str(error)


def test_comments_do_not_move_the_reported_line(tmp_path: Path) -> None:
    path = tmp_path / "mcp.json"
    path.write_text('{\n  /* one\n     two */ // three\n  "servers": {\n    "a": {,}\n  }\n}\n')
    assert "line 5, column 11" in str(_error(path))


def test_a_file_that_is_not_an_object(tmp_path: Path) -> None:
    path = tmp_path / "c.json"
    path.write_text('["mcpServers"]')
    assert _error(path).paths == ("",)


def test_missing_file() -> None:
    path = CONFIGS / "no_such_config.json"
    error = _error(path)
    assert str(error) == f"{path}: no such file"


def test_directory_instead_of_file(tmp_path: Path) -> None:
    directory = tmp_path / "conf.json"
    directory.mkdir()
    assert str(_error(directory)) == f"{directory}: is a directory, not a config file"


def test_unsupported_suffix(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text("mcpServers: {}\n")
    assert "expected .json or .toml" in str(_error(path))


def test_a_byte_order_mark_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "claude_desktop_config.json"
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps({"mcpServers": {"a": {"command": "x"}}}).encode())
    assert load_config(path).names == ("a",)


def test_strings_and_pathlike_both_name_files(tmp_path: Path) -> None:
    path = tmp_path / "c.json"
    path.write_text('{"mcpServers": {"a": {"command": "x"}}}')
    assert load_config(str(path)) == load_config(path)


# -- secrets

SECRET = "SENTINEL_s3cr3t_value"


@pytest.mark.parametrize(
    "config",
    [
        _servers(a={"command": "x", "env": {"K": SECRET, "N": 1}}),
        _servers(a={"command": "x", "env": {"K": SECRET}, "max_isolated": 0}),
        _servers(a={"url": f"https://user:{SECRET}@/mcp"}),
        _servers(a={"url": f"ftp://h/mcp?token={SECRET}"}),
        _servers(a={"url": "https://h/mcp", "headers": {"Authorization": SECRET, "X": 2}}),
        _servers(a={"command": "x", "env": {"K": "${UNSET:-" + SECRET}}),
        _servers(a={"command": "x", "env": {"K": "${" + SECRET + " }"}}),
        _servers(a={"command": "x", "env": {"K": SECRET}, "restart": {"within": SECRET}}),
        _servers(a={"command": "x", "env": {"K": SECRET}}, b={"url": "https://h", "env": {}}),
    ],
)
def test_errors_never_contain_secret_values(config: Any) -> None:
    error = _error(config, environ={"SET": SECRET})
    assert SECRET not in str(error)
    assert SECRET not in repr(error)
    assert all(SECRET not in p.path + p.message for p in error.problems)


def test_expanded_secrets_stay_out_of_errors() -> None:
    error = _error(
        _servers(a={"command": "x", "env": {"K": "${SET}"}, "max_concurrency": -1}),
        environ={"SET": SECRET},
    )
    assert error.paths == ("mcpServers.a.max_concurrency",)
    assert SECRET not in str(error)


# -- dumping


def test_dumping_an_in_process_server_names_it() -> None:
    from mcp.server.mcpserver import MCPServer

    spec = SupervisorSpec(
        [StdioSpec(name="a", command="x"), InProcessSpec(name="embedded", server=MCPServer("e"))]
    )
    with pytest.raises(ConfigError) as info:
        dump_config(spec)
    assert info.value.paths == ("mcpServers.embedded",)
    assert "in-process" in str(info.value)


# -- hostile nesting


def test_deeply_nested_json_is_a_config_error_not_a_recursion_error(tmp_path: Path) -> None:
    path = tmp_path / "deep.json"
    path.write_text(
        '{"mcpServers": {"a": {"command": "x", "env": ' + "[" * 50_000 + "]" * 50_000 + "}}}"
    )
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert info.value.paths == (str(path),)
    assert "nested too deeply" in str(info.value)


def test_deeply_nested_toml_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "deep.toml"
    path.write_text("[mcp_servers.a]\ncommand = 'x'\nargs = " + "[" * 50_000 + "]" * 50_000 + "\n")
    with pytest.raises(ConfigError, match="nested too deeply"):
        load_config(path)


def test_a_deeply_nested_mapping_is_a_config_error_at_its_path() -> None:
    inner: dict[str, Any] = {}
    data = {"mcpServers": {"a": {"command": "x", "timeouts": inner}}}
    for _ in range(5_000):
        inner["x"] = {}
        inner = inner["x"]
    with pytest.raises(ConfigError) as info:
        load_config(data)
    (path,) = info.value.paths
    assert path.startswith("mcpServers.a.timeouts.x.x")
