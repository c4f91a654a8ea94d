"""JSON with comments, as VS Code writes it, parses like the JSON it stands for."""

from __future__ import annotations

import json

import pytest

from mcpvisor.specs._config_files import strip_jsonc


@pytest.mark.parametrize(
    ("jsonc", "value"),
    [
        ('{"a": 1, // one\n "b": 2}', {"a": 1, "b": 2}),
        ('{"a": /* inline */ 1}', {"a": 1}),
        (
            '{"url": "http://h/x", "c": "/* not a comment */"}',
            {"url": "http://h/x", "c": "/* not a comment */"},
        ),
        ('{"q": "say \\"//\\" twice", "n": 1}', {"q": 'say "//" twice', "n": 1}),
        ('{"a": [1, 2,],}', {"a": [1, 2]}),
        ('{"a": [1, 2, /* c */ ] , }', {"a": [1, 2]}),
        ('{"a": "x,}"}', {"a": "x,}"}),
        ('{"a": "\\\\"} // ends after an escaped backslash', {"a": "\\"}),
        ("\n// only a comment line\n{}\n", {}),
    ],
)
def test_strip_jsonc(jsonc: str, value: object) -> None:
    stripped = strip_jsonc(jsonc)
    assert json.loads(stripped) == value
    assert len(stripped) == len(jsonc)
    assert stripped.count("\n") == jsonc.count("\n")


@pytest.mark.parametrize("broken", ["{,}", "[,]", '{"a": 1,,}', '{"a": 1 /* open'])
def test_stripping_does_not_make_broken_json_valid(broken: str) -> None:
    with pytest.raises(json.JSONDecodeError):
        json.loads(strip_jsonc(broken))
