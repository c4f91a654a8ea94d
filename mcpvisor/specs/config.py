"""Loading a :class:`SupervisorSpec` from the config files MCP hosts already use, and back.

:func:`load_config` reads Claude Desktop / Cursor (``mcpServers``), VS Code (``servers``) and
Codex (``mcp_servers``) files as they are, plus optional mcpvisor keys per server and a
top-level ``mcpvisor`` section of defaults and groups. It reports every problem in one
:class:`ConfigError`, each at its path in the file. :func:`dump_config` writes a spec back out in
the Claude Desktop shape.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from difflib import get_close_matches
from pathlib import Path
from types import NoneType, UnionType
from typing import Any, Final, Literal, Union, get_args, get_origin, get_type_hints
from urllib.parse import urlsplit

import attrs
import cattrs
from cattrs.gen import make_dict_unstructure_fn, override

from mcpvisor.specs._config_files import MAX_DEPTH, DuplicateKeysDict, read_config_file, too_deep
from mcpvisor.specs._config_vars import VariableError, escape, expand
from mcpvisor.specs._logging import library_logger
from mcpvisor.specs.errors import ConfigError, Problem
from mcpvisor.specs.policy import STRATEGIES
from mcpvisor.specs.servers import (
    DEFAULT_MAX_MESSAGE_BYTES,
    HttpSpec,
    InProcessSpec,
    ServerSpec,
    SseSpec,
    StdioSpec,
    SupervisorSpec,
    _Supervised,
    _unknown,
    name_problem,
)

_log = library_logger()

Transport = Literal["stdio", "http", "sse"]

SERVER_SECTIONS: Final = ("mcpServers", "servers", "mcp_servers")
"""Top-level keys that hold servers: Claude Desktop and Cursor, VS Code, Codex."""

_TRANSPORT_NAMES: Final[Mapping[str, Transport]] = {
    "stdio": "stdio",
    "http": "http",
    "streamable-http": "http",
    "streamable_http": "http",
    "streamableHttp": "http",
    "sse": "sse",
}
_TRANSPORT_KEYS: Final[Mapping[Transport, frozenset[str]]] = {
    "stdio": frozenset({"command", "args", "env", "cwd", "max_message_bytes"}),
    "http": frozenset({"url", "headers"}),
    "sse": frozenset({"url", "headers"}),
}
_A: Final[Mapping[Transport, str]] = {"stdio": "a stdio", "http": "an http", "sse": "an sse"}
_ALL_TRANSPORT_KEYS: Final = frozenset().union(*_TRANSPORT_KEYS.values())
_HOST_KEYS: Final = frozenset({"type", "transport", "disabled"})
_NOT_CONFIG_KEYS: Final = frozenset({"name", "secrets"})
_SUPERVISED_FIELDS: Final = tuple(
    f.name for f in attrs.fields(_Supervised) if f.name not in _NOT_CONFIG_KEYS
)
_MCPVISOR_KEYS: Final = ("defaults", "groups")


def load_config(
    source: str | os.PathLike[str] | Mapping[str, Any],
    *,
    environ: Mapping[str, str] | None = None,
) -> SupervisorSpec:
    """Build a :class:`SupervisorSpec` from a config file (``.json`` or ``.toml``) or a mapping.

    Accepted shapes, unchanged from the hosts that write them:

    - ``{"mcpServers": {name: server}}`` (Claude Desktop, Cursor, Claude Code, and the output
      of :func:`dump_config`); ``{"servers": {...}}`` (VS Code's ``mcp.json``, whose comments,
      trailing commas and ``inputs`` are allowed); ``{"mcp_servers": {...}}`` (Codex TOML).
    - A server is ``{"command", "args", "env", "cwd"}`` (stdio) or ``{"url", "headers"}``.
      ``type`` or FastMCP's ``transport`` (``stdio``, ``http``, ``streamable-http``, ``sse``)
      picks the transport; without one, a ``url`` is streamable HTTP unless its path ends in
      ``/sse``. ``"disabled": true`` skips the server.
    - Per server, the supervision fields of the spec classes: ``required``, ``group``,
      ``restart`` (with a nested ``backoff``), ``timeouts``, ``start``, ``idle_shutdown``,
      ``max_concurrency``, ``max_isolated``. A top-level ``{"mcpvisor": {"defaults": {...},
      "groups": {name: strategy}}}`` gives every server defaults, which its own keys override
      field by field.

    Every string value (not the keys of ``env`` and ``headers``) may use ``${NAME}``,
    ``${env:NAME}`` or ``${NAME:-default}``, read from ``environ`` (default ``os.environ``) at
    load time; ``$${`` is a literal ``${``. Keys other hosts add to a server (``autoApprove``,
    ``description``...) are logged as ``config.unknown_key`` warnings and ignored, as is VS
    Code's ``envFile``; unknown keys in mcpvisor's own sections are errors. Other top-level
    keys (a host's own settings) are ignored.

    Raises :class:`ConfigError` listing every problem, each at its path in the file
    (``mcpServers.github.restart.backoff.jitter``). Messages never include values from ``env``
    or ``headers``, nor URL credentials.
    """
    environment = os.environ if environ is None else environ
    if isinstance(source, Mapping):
        data: object = source
    else:
        data = read_config_file(Path(source))
    return _Loader(environment).load(data)


def dump_config(spec: SupervisorSpec, *, defaults: bool = False) -> dict[str, Any]:
    """``spec`` as a Claude-Desktop-shaped dict that :func:`load_config` turns back into it.

    Fields at their defaults are left out, unless ``defaults=True`` asks for every field (the
    effective config); strings are escaped so that nothing in them is taken for a variable
    reference. The result holds ``env`` and header values as they are:
    it is the user's configuration, not a log. Raises :class:`ConfigError` for an
    :class:`InProcessSpec`, which no file can describe.
    """
    in_process = [s for s in spec.servers if isinstance(s, InProcessSpec)]
    if in_process:
        raise ConfigError(
            Problem(
                f"mcpServers.{s.name}",
                "is an in-process server, which a config file cannot describe",
            )
            for s in in_process
        )
    result = (_EFFECTIVE if defaults else _CONVERTER).unstructure(spec, SupervisorSpec)
    assert isinstance(result, dict)
    return result


# -- loading ----------------------------------------------------------------------------------


class _Invalid:
    """Marks a value that was reported as a problem."""


_INVALID: Final = _Invalid()

_Layer = tuple[Mapping[str, Any], str]
"""A raw mapping and its path; later layers override earlier ones field by field."""


def _join(path: str, key: object) -> str:
    return f"{path}.{key}" if path else str(key)


def _unknown_key(key: str, valid: Iterable[str]) -> str:
    message = f"unknown key {key!r}"
    close = get_close_matches(key, list(valid), n=1)
    if close:
        return f"{message}; did you mean {close[0]!r}?"
    return f"{message}; expected one of {', '.join(valid)}"


def _choice_problem(value: object, choices: Sequence[str]) -> str | None:
    if isinstance(value, str) and value in choices:
        return None
    message = f"must be one of {', '.join(choices)}"
    close = get_close_matches(value, list(choices), n=1) if isinstance(value, str) else []
    return f"{message}; did you mean {close[0]!r}?" if close else message


def _type_problem(value: object, tp: Any) -> str | None:
    """Why ``value`` does not fit the field type ``tp``, or None if it does."""
    origin = get_origin(tp)
    if origin is Literal:
        return _choice_problem(value, get_args(tp))
    if origin in (Union, UnionType):
        options = get_args(tp)
        if value is None and NoneType in options:
            return None
        (other,) = (o for o in options if o is not NoneType)
        problem = _type_problem(value, other)
        return f"{problem}, or null" if problem and NoneType in options else problem
    if tp is bool:
        return None if isinstance(value, bool) else "must be true or false"
    if tp is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
        return None if ok else "must be an integer"
    if tp is float:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        return None if ok else "must be a number"
    if tp is str:
        return None if isinstance(value, str) else "must be a string"
    raise TypeError(f"no config type check for {tp!r}")  # pragma: no cover


def _members(tp: Any) -> tuple[Any, ...]:
    return get_args(tp) if get_origin(tp) in (Union, UnionType) else (tp,)


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    return get_type_hints(cls)


class _Loader:
    """One load: collects every problem, then raises them together."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self.environ = environ
        self.problems: list[Problem] = []
        self.expanded: list[str] = []

    def problem(self, path: str, message: str) -> None:
        self.problems.append(Problem(path, message))

    def load(self, data: object) -> SupervisorSpec:
        deep = too_deep(data)
        if deep is not None:
            # Checked before anything walks the tree: a thousand nested arrays would exhaust
            # the stack of every recursive step below.
            message = f"nested too deeply (more than {MAX_DEPTH} levels of objects and arrays)"
            raise ConfigError([Problem(deep, message)])
        self.find_duplicate_keys(data, "")
        spec = self.supervisor(data)
        if spec is None or self.problems:
            # The same default can be reached from several servers: report it once.
            raise ConfigError(dict.fromkeys(self.problems))
        return spec

    def find_duplicate_keys(self, node: object, path: str) -> None:
        if isinstance(node, Mapping):
            duplicates = node.duplicates if isinstance(node, DuplicateKeysDict) else ()
            for key, value in node.items():
                if key in duplicates:
                    self.problem(_join(path, key), "duplicate key; only the last one would count")
                self.find_duplicate_keys(value, _join(path, key))
        elif isinstance(node, list):
            for i, item in enumerate(node):
                self.find_duplicate_keys(item, f"{path}[{i}]")

    # -- the top level

    def supervisor(self, data: object) -> SupervisorSpec | None:
        if not isinstance(data, Mapping):
            self.problem("", "a config must be an object with an 'mcpServers' or 'servers' key")
            return None
        top, servers = self.server_section(data)
        defaults, groups = self.mcpvisor_section(data.get("mcpvisor"))
        if defaults is not None:
            # Checked on their own too, so that bad defaults are reported with no servers.
            kwargs, origins = self.supervised([defaults], defaults[1], groups)
            try:
                StdioSpec(name="defaults", command="placeholder", **kwargs)
            except ConfigError as e:
                self.absorb(e, "defaults", defaults[1], origins)
        specs: list[ServerSpec] = []
        for name, entry in servers.items():
            spec = self.server(_join(top, name), name, entry, defaults, groups)
            if spec is not None:
                specs.append(spec)
        if self.problems:
            return None
        try:
            return SupervisorSpec(specs, groups)
        except ConfigError as e:  # pragma: no cover - every check is made above, with paths
            self.problems.extend(e.problems)
            return None

    def server_section(self, data: Mapping[str, Any]) -> tuple[str, Mapping[str, Any]]:
        present = [key for key in SERVER_SECTIONS if key in data]
        vscode_settings = data.get("mcp")
        if not present and isinstance(vscode_settings, Mapping) and "servers" in vscode_settings:
            # VS Code's settings.json nests the mcp.json shape under "mcp".
            return self.server_mapping(vscode_settings["servers"], "mcp.servers")
        if not present:
            message = "no servers: expected a top-level 'mcpServers' or 'servers' object"
            close = [
                match
                for key in data
                if isinstance(key, str)
                for match in get_close_matches(key, SERVER_SECTIONS, n=1)
            ]
            if close:
                message += f"; did you mean {close[0]!r}?"
            self.problem("", message)
            return "mcpServers", {}
        if len(present) > 1:
            self.problem("", f"has both {present[0]!r} and {present[1]!r}; use one of them")
        return self.server_mapping(data[present[0]], present[0])

    def server_mapping(self, value: object, top: str) -> tuple[str, Mapping[str, Any]]:
        if not isinstance(value, Mapping):
            self.problem(top, "must be an object mapping server names to servers")
            return top, {}
        return top, value

    def mcpvisor_section(self, raw: object) -> tuple[_Layer | None, dict[str, Any]]:
        """The defaults layer and the groups of the top-level ``mcpvisor`` section."""
        path = "mcpvisor"
        if raw is None:
            return None, {}
        if not isinstance(raw, Mapping):
            self.problem(path, "must be an object with 'defaults' and/or 'groups'")
            return None, {}
        for key in raw:
            if key not in _MCPVISOR_KEYS:
                self.problem(_join(path, key), _unknown_key(str(key), _MCPVISOR_KEYS))
        defaults: _Layer | None = None
        if "defaults" in raw:
            defaults_path = _join(path, "defaults")
            value = raw["defaults"]
            if isinstance(value, Mapping):
                for key in value:
                    if key not in _SUPERVISED_FIELDS:
                        self.problem(
                            _join(defaults_path, key), _unknown_key(str(key), _SUPERVISED_FIELDS)
                        )
                defaults = (value, defaults_path)
            else:
                self.problem(defaults_path, "must be an object")
        groups: dict[str, Any] = {}
        if "groups" in raw:
            groups_path = _join(path, "groups")
            value = raw["groups"]
            if isinstance(value, Mapping):
                for group, strategy in value.items():
                    group_path = _join(groups_path, group)
                    problem = name_problem(group)
                    if problem is not None:
                        self.problem(group_path, f"group name {problem}")
                    strategy = self.scalar(strategy, str, group_path)
                    if strategy is not _INVALID:
                        problem = _choice_problem(strategy, STRATEGIES)
                        if problem is not None:
                            self.problem(group_path, problem)
                    groups[group] = strategy
            else:
                self.problem(groups_path, "must be an object mapping group names to strategies")
        return defaults, groups

    # -- one server

    def server(
        self,
        path: str,
        name: object,
        entry: object,
        defaults: _Layer | None,
        groups: Mapping[str, Any],
    ) -> ServerSpec | None:
        if not isinstance(entry, Mapping):
            self.problem(path, "a server must be an object")
            return None
        first_expanded = len(self.expanded)
        disabled = entry.get("disabled", False)
        if disabled is True:
            return None
        if not isinstance(disabled, bool):
            self.problem(_join(path, "disabled"), "must be true or false")
        problem = name_problem(name)
        if problem is not None:
            self.problem(path, f"server name {problem}")
        label = name if isinstance(name, str) and problem is None else "server"
        transport = self.transport(path, entry)
        known = _HOST_KEYS | _ALL_TRANSPORT_KEYS | set(_SUPERVISED_FIELDS)
        for key in entry:
            key_path = _join(path, key)
            if key == "envFile":
                _log.warning("config.env_file_ignored", server=str(name), path=key_path)
            elif transport is not None and key in _ALL_TRANSPORT_KEYS - _TRANSPORT_KEYS[transport]:
                self.problem(key_path, f"does not apply to {_A[transport]} server")
            elif key not in known:
                close = get_close_matches(str(key), sorted(known), n=1)
                _log.warning(
                    "config.unknown_key",
                    server=str(name),
                    key=key,
                    path=key_path,
                    did_you_mean=close[0] if close else None,
                )
        layers = [(entry, path)] if defaults is None else [defaults, (entry, path)]
        before = len(self.problems)
        kwargs, origins = self.supervised(layers, path, groups)
        # Invalid or missing values are reported where they are read, and replaced by valid
        # placeholders so that the spec's own checks still run on everything else.
        cls: type[StdioSpec | HttpSpec | SseSpec]
        fields: dict[str, Any]
        if transport == "http" or transport == "sse":
            cls = HttpSpec if transport == "http" else SseSpec
            fields = {"url": "http://placeholder"}
            self.read(fields, entry, "url", path, self.string)
            self.read(fields, entry, "headers", path, self.string_map)
        else:
            cls, fields = StdioSpec, {"command": "placeholder"}
            if transport == "stdio":
                self.read(fields, entry, "command", path, self.string)
                self.read(fields, entry, "args", path, self.strings)
                self.read(fields, entry, "env", path, self.string_map)
                self.read(fields, entry, "cwd", path, self.optional_string)
                self.read(fields, entry, "max_message_bytes", path, self.integer)
        try:
            secrets = self.expanded[first_expanded:]
            spec = cls(name=label, secrets=secrets, **kwargs, **fields)
        except ConfigError as e:
            self.absorb(e, label, path, origins)
            return None
        return spec if len(self.problems) == before else None

    def read(
        self,
        fields: dict[str, Any],
        entry: Mapping[str, Any],
        key: str,
        path: str,
        check: Callable[[object, str], object],
    ) -> None:
        if key in entry:
            value = check(entry[key], _join(path, key))
            if value is not _INVALID:
                fields[key] = value

    def transport(self, path: str, entry: Mapping[str, Any]) -> Transport | None:
        declared: dict[str, Transport] = {}
        for key in ("type", "transport"):
            if key in entry:
                value = self.scalar(entry[key], str, _join(path, key))
                if value is _INVALID:
                    return None
                if value not in _TRANSPORT_NAMES:
                    close = get_close_matches(value, list(_TRANSPORT_NAMES), n=1)
                    message = "must be one of stdio, http, streamable-http, sse"
                    if close:
                        message += f"; did you mean {close[0]!r}?"
                    self.problem(_join(path, key), message)
                    return None
                declared[key] = _TRANSPORT_NAMES[value]
        if len(set(declared.values())) > 1:
            self.problem(_join(path, "transport"), "disagrees with 'type'")
            return None
        has_command, has_url = "command" in entry, "url" in entry
        if declared:
            transport = next(iter(declared.values()))
            if transport == "stdio" and not has_command:
                self.problem(_join(path, "command"), "is required for a stdio server")
            if transport != "stdio" and not has_url:
                self.problem(_join(path, "url"), f"is required for {_A[transport]} server")
            return transport
        if has_command and has_url:
            self.problem(path, "has both a command and a url; set 'type' to say which to use")
            return None
        if has_command:
            return "stdio"
        if has_url:
            return "sse" if self.looks_like_sse(entry["url"]) else "http"
        self.problem(path, "needs a 'command' (stdio server) or a 'url' (http or sse server)")
        return None

    def looks_like_sse(self, url: object) -> bool:
        if not isinstance(url, str):
            return False
        try:
            url = expand(url, self.environ)
            return urlsplit(url).path.rstrip("/").endswith("/sse")
        except (VariableError, ValueError):
            return False  # reported when the url itself is read

    def supervised(
        self, layers: list[_Layer], home: str, groups: Mapping[str, Any]
    ) -> tuple[dict[str, Any], dict[str, str]]:
        """Keyword arguments for the supervision fields, and the path each came from."""
        kwargs, origins, _, _ = self.fields(_Supervised, layers, home, skip=_NOT_CONFIG_KEYS)
        group = kwargs.get("group")
        if isinstance(group, str) and group not in groups:
            self.problem(origins["group"], _unknown("group", group, groups))
            del kwargs["group"]
        return kwargs, origins

    def absorb(self, error: ConfigError, label: str, path: str, origins: Mapping[str, str]) -> None:
        """Re-roots problems a spec reported as ``label.field...`` at the field's origin."""
        for p in error.problems:
            relative = p.path.removeprefix(f"{label}.") if p.path != label else ""
            head, _, rest = relative.partition(".")
            base = origins.get(head, _join(path, head)) if head else path
            self.problem(_join(base, rest) if rest else base, p.message)

    # -- field by field

    def fields(
        self,
        cls: type,
        layers: list[_Layer],
        home: str,
        *,
        skip: frozenset[str] | set[str] = frozenset(),
    ) -> tuple[dict[str, Any], dict[str, str], bool, bool]:
        """Checked keyword arguments for ``cls`` from ``layers``, the path of each, whether
        every value of ``cls``'s own had the right type, and whether every nested object was
        valid. Invalid values are reported and left out.

        Nested attrs classes are built from the same key in every layer, merged field by
        field.
        """
        hints = _hints(cls)
        names = [f.name for f in attrs.fields(cls) if f.name not in skip]
        here = layers[-1][1] if layers else home
        if cls is not _Supervised:
            for raw, path in layers:
                for key in raw:
                    if key not in names:
                        self.problem(_join(path, key), _unknown_key(str(key), names))
        kwargs: dict[str, Any] = {}
        origins: dict[str, str] = {}
        ok = nested_ok = True
        for field in names:
            tp = hints[field]
            if attrs.has(tp):
                nested: list[_Layer] = []
                for raw, path in layers:
                    if field in raw:
                        value = raw[field]
                        if isinstance(value, Mapping):
                            nested.append((value, _join(path, field)))
                        else:
                            self.problem(_join(path, field), "must be an object")
                            nested_ok = False
                origins[field] = _join(here, field)
                built = self.build(tp, nested, _join(here, field))
                if built is _INVALID:
                    nested_ok = False
                else:
                    kwargs[field] = built
                continue
            for raw, path in reversed(layers):
                if field in raw:
                    value = self.scalar(raw[field], tp, _join(path, field))
                    if value is _INVALID:
                        ok = False
                    else:
                        kwargs[field] = value
                        origins[field] = _join(path, field)
                    break
        return kwargs, origins, ok, nested_ok

    def build(self, cls: type, layers: list[_Layer], home: str) -> Any:
        """An instance of the policy class ``cls`` merged from ``layers``, or ``_INVALID``."""
        kwargs, origins, ok, nested_ok = self.fields(cls, layers, home)
        if not ok:
            # Built from what is left, a cross-field check could blame a valid value.
            return _INVALID
        try:
            # A bad nested object was replaced by its default, so cls's own checks still run.
            built = cls(**kwargs)
            return built if nested_ok else _INVALID
        except ConfigError as e:
            here = layers[-1][1] if layers else home
            for p in e.problems:
                head, _, rest = p.path.partition(".")
                base = origins.get(head, _join(here, head))
                self.problem(_join(base, rest) if rest else base, p.message)
            return _INVALID

    def scalar(self, value: object, tp: Any, path: str) -> Any:
        if isinstance(value, str):
            value = self.expand(value, path)
            if value is _INVALID:
                return _INVALID
        problem = _type_problem(value, tp)
        if problem is not None:
            self.problem(path, problem)
            return _INVALID
        if isinstance(value, int) and not isinstance(value, bool) and float in _members(tp):
            # JSON writes 60 for 60.0; a float field should hold a float either way.
            try:
                return float(value)
            except OverflowError:
                self.problem(path, "is too large")
                return _INVALID
        return value

    def string(self, value: object, path: str) -> object:
        return self.scalar(value, str, path)

    def integer(self, value: object, path: str) -> object:
        return self.scalar(value, int, path)

    def optional_string(self, value: object, path: str) -> object:
        return self.scalar(value, str | None, path)

    def expand(self, text: str, path: str) -> str | _Invalid:
        try:
            return expand(text, self.environ, self.expanded)
        except VariableError as e:
            self.problem(path, str(e))
            return _INVALID

    def strings(self, value: object, path: str) -> list[str] | _Invalid:
        if isinstance(value, str) or not isinstance(value, Sequence):
            self.problem(path, "must be an array of strings")
            return _INVALID
        items = [self.scalar(item, str, f"{path}[{i}]") for i, item in enumerate(value)]
        return _INVALID if any(i is _INVALID for i in items) else items

    def string_map(self, value: object, path: str) -> dict[str, str] | _Invalid:
        if not isinstance(value, Mapping):
            self.problem(path, "must be an object of strings")
            return _INVALID
        result: dict[str, str] = {}
        ok = True
        for key, item in value.items():
            if not isinstance(key, str) or not key:
                self.problem(path, "keys must be non-empty strings")
                ok = False
                continue
            # Never echo the value itself: it may be a secret.
            checked = self.scalar(item, str, _join(path, key))
            if checked is _INVALID:
                ok = False
            else:
                result[key] = checked
        return result if ok else _INVALID


# -- dumping ----------------------------------------------------------------------------------


def _escaped(node: Any) -> Any:
    """``node`` with every string value (not key) protected from variable expansion."""
    if isinstance(node, str):
        return escape(node)
    if isinstance(node, Mapping):
        return {key: _escaped(value) for key, value in node.items()}
    if isinstance(node, list | tuple):
        return [_escaped(item) for item in node]
    return node


def _make_converter(*, omit_defaults: bool = True) -> cattrs.Converter:
    converter = cattrs.Converter(omit_if_default=omit_defaults)
    supervised = make_dict_unstructure_fn(
        _Supervised,
        converter,
        _cattrs_omit_if_default=omit_defaults,
        name=override(omit=True),
        secrets=override(omit=True),
    )

    def entry(spec: StdioSpec | HttpSpec | SseSpec) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if isinstance(spec, StdioSpec):
            out["command"] = spec.command
            if spec.args:
                out["args"] = list(spec.args)
            if spec.env:
                out["env"] = dict(spec.env)
            if spec.cwd is not None:
                out["cwd"] = spec.cwd
            if spec.max_message_bytes != DEFAULT_MAX_MESSAGE_BYTES or not omit_defaults:
                out["max_message_bytes"] = spec.max_message_bytes
        else:
            # Explicit, because a url ending in /sse would otherwise be taken for SSE.
            out["type"] = "http" if isinstance(spec, HttpSpec) else "sse"
            out["url"] = spec.url
            if spec.headers:
                out["headers"] = dict(spec.headers)
        out.update(supervised(spec))
        return _escaped(out)  # type: ignore[no-any-return]

    def refuse(spec: InProcessSpec) -> dict[str, Any]:
        raise ConfigError(
            [
                Problem(
                    f"mcpServers.{spec.name}",
                    "is an in-process server, which a config file cannot describe",
                )
            ]
        )

    def supervisor(spec: SupervisorSpec) -> dict[str, Any]:
        out: dict[str, Any] = {
            "mcpServers": {s.name: converter.unstructure(s) for s in spec.servers}
        }
        if spec.groups:
            out["mcpvisor"] = {"groups": dict(spec.groups)}
        return out

    for cls in (StdioSpec, HttpSpec, SseSpec):
        converter.register_unstructure_hook(cls, entry)
    converter.register_unstructure_hook(InProcessSpec, refuse)
    converter.register_unstructure_hook(SupervisorSpec, supervisor)
    return converter


_CONVERTER: Final = _make_converter()
_EFFECTIVE: Final = _make_converter(omit_defaults=False)

__all__ = ["dump_config", "load_config"]
