"""Caller mistakes on the command line are usage errors (exit 2, one line), never
"unexpected RecursionError" (exit 1): deep JSON, non-object arguments, nan/negative seconds."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cli_support import FIXTURES, mcpvisor

from mcpvisor.cli import main

VSCODE = str(FIXTURES / "vscode.json")
DEEP = "[" * 50_000 + "]" * 50_000


def _one_line_error(err: str) -> str:
    assert err.startswith("mcpvisor: error: ")
    assert len(err.strip().splitlines()) == 1
    assert "Traceback" not in err and "unexpected" not in err
    return err


def test_deeply_nested_config_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "deep.json"
    path.write_text('{"mcpServers": {"a": {"command": "x", "args": ' + DEEP + "}}}")
    done = mcpvisor("check", str(path))
    assert done.returncode == 2, done.stderr
    assert "nested too deeply" in _one_line_error(done.stderr)


@pytest.mark.parametrize(
    ("arguments", "fragment"),
    [
        ('{"a": ' + DEEP + "}", "deeper than 100 levels"),
        ('{"a": ' + "[" * 150 + "]" * 150 + "}", "deeper than 100 levels"),
        ("[1, 2]", "must be a JSON object"),
        ('"text"', "must be a JSON object"),
        ("null", "must be a JSON object"),
        ("{nope", "not valid JSON"),
    ],
)
def test_bad_call_arguments_are_usage_errors(
    arguments: str, fragment: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["call", VSCODE, "notes__echo", arguments]) == 2
    assert fragment in _one_line_error(capsys.readouterr().err)


@pytest.mark.parametrize("value", ["nan", "-1", "0", "inf", "soon"])
def test_bad_seconds_are_usage_errors(value: str, capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (
        ["call", VSCODE, "notes__echo", "{}", "--timeout", value],
        ["demo", "--duration", value],
    ):
        with pytest.raises(SystemExit) as info:
            main(argv)
        assert info.value.code == 2
        err = capsys.readouterr().err
        assert "seconds" in err and "Traceback" not in err


def test_call_splits_at_the_first_separator() -> None:
    # The tool part may hold "__" and start with "_"; the server name can hold neither.
    done = mcpvisor("call", VSCODE, "notes___echo", "{}")
    assert done.returncode == 2
    assert "has no tool '_echo'" in _one_line_error(done.stderr)


def test_server_names_ending_in_underscore_are_refused_at_their_path(tmp_path: Path) -> None:
    config = tmp_path / "mcp.json"
    config.write_text(json.dumps({"mcpServers": {"notes_": {"command": "x"}}}))
    done = mcpvisor("check", str(config))
    assert done.returncode == 2
    assert "mcpServers.notes_: server name must not end with '_'" in _one_line_error(done.stderr)
