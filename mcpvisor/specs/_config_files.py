"""Reading config files: JSON (with the comments and trailing commas VS Code allows) and TOML.

The only I/O in config loading happens here. Syntax errors become a :class:`ConfigError`
naming the file and line; duplicate JSON keys, which ``json`` would silently overwrite, are
remembered so the loader can report them with their path.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mcpvisor.specs.errors import ConfigError, Problem

JSON_SUFFIXES = (".json", ".jsonc")
MAX_DEPTH = 64
"""How deeply a config may nest objects and arrays; real host configs need about six levels."""
_TOO_DEEP = f"nested too deeply (more than {MAX_DEPTH} levels of objects and arrays)"
TOML_SUFFIXES = (".toml",)


class DuplicateKeysDict(dict[str, Any]):
    """A JSON object that remembers which of its keys appeared more than once."""

    duplicates: tuple[str, ...] = ()


def _object_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = DuplicateKeysDict()
    duplicates: list[str] = []
    for key, value in pairs:
        if key in obj and key not in duplicates:
            duplicates.append(key)
        obj[key] = value
    obj.duplicates = tuple(duplicates)
    return obj


def read_config_file(path: Path) -> object:
    """The parsed contents of ``path``; raises :class:`ConfigError` if it can't be read."""
    where = str(path)
    suffix = path.suffix.lower()
    if suffix not in JSON_SUFFIXES + TOML_SUFFIXES:
        raise ConfigError([Problem(where, "unsupported config file type; expected .json or .toml")])
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError([Problem(where, "no such file")]) from None
    except IsADirectoryError:
        raise ConfigError([Problem(where, "is a directory, not a config file")]) from None
    except OSError as e:
        raise ConfigError([Problem(where, f"cannot be read: {e.strerror}")]) from None
    try:
        # utf-8-sig: editors on Windows like to start JSON files with a byte order mark.
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ConfigError([Problem(where, "is not valid UTF-8")]) from None
    if suffix in TOML_SUFFIXES:
        try:
            return tomllib.loads(text)
        except tomllib.TOMLDecodeError as e:
            raise ConfigError([Problem(where, f"invalid TOML: {e}")]) from None
        except RecursionError:
            raise ConfigError([Problem(where, _TOO_DEEP)]) from None
    try:
        return json.loads(strip_jsonc(text), object_pairs_hook=_object_pairs)
    except json.JSONDecodeError as e:
        message = f"invalid JSON at line {e.lineno}, column {e.colno}: {e.msg}"
        raise ConfigError([Problem(where, message)]) from None
    except RecursionError:
        raise ConfigError([Problem(where, _TOO_DEEP)]) from None


def too_deep(data: object) -> str | None:
    """The path of the first value nested deeper than :data:`MAX_DEPTH`, or None.

    Iterative, so that the check itself cannot exhaust the stack it protects.
    """
    stack: list[tuple[object, str, int]] = [(data, "", 0)]
    while stack:
        node, path, depth = stack.pop()
        if isinstance(node, Mapping):
            children = [(f"{path}.{key}" if path else str(key), v) for key, v in node.items()]
        elif isinstance(node, list | tuple):
            children = [(f"{path}[{i}]", item) for i, item in enumerate(node)]
        else:
            continue
        if depth >= MAX_DEPTH:
            return path
        stack.extend((child, where, depth + 1) for where, child in children)
    return None


def strip_jsonc(text: str) -> str:
    """``text`` with ``//`` and ``/* */`` comments and trailing commas blanked out.

    Blanking (rather than deleting) keeps every line and column where it was, so that a JSON
    syntax error still points at the right place in the user's file.
    """
    out: list[str] = []
    i, n = 0, len(text)
    in_string = False
    comma: int | None = None  # index in out of a comma that may turn out to be trailing
    previous = ""  # the last significant character outside strings and comments
    while i < n:
        ch = text[i]
        if in_string:
            if ch == "\\":
                out.append(text[i : i + 2])
                i += 2
                continue
            if ch == '"':
                in_string = False
            out.append(ch)
            i += 1
            continue
        if text.startswith("//", i):
            end = text.find("\n", i)
            end = n if end < 0 else end
            out.append(_blank(text[i:end]))
            i = end
            continue
        if text.startswith("/*", i):
            end = text.find("*/", i + 2)
            if end < 0:
                out.append(text[i:])  # unterminated: let the JSON parser report it
                break
            out.append(_blank(text[i : end + 2]))
            i = end + 2
            continue
        if ch in "}]" and comma is not None:
            out[comma] = " "
        if not ch.isspace():
            comma = len(out) if ch == "," and previous not in ("", "{", "[", ",") else None
            previous = ch
            in_string = ch == '"'
        out.append(ch)
        i += 1
    return "".join(out)


def _blank(comment: str) -> str:
    return "".join(c if c in "\r\n" else " " for c in comment)
