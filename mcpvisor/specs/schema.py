"""A JSON Schema of the config keys mcpvisor reads, for editors (``mcpvisor config schema``).

Built from the spec classes themselves (field names, types, defaults), plus the bounds their
validators enforce, so the schema cannot drift from what :func:`load_config` accepts for
mcpvisor's own keys. It describes the ``mcpvisor`` section (``defaults``, ``groups``) and each
server entry: the host keys (``command``, ``url``...) and mcpvisor's supervision keys. Keys
other hosts add to a server entry are allowed, as the loader allows them; unknown keys inside
mcpvisor's own objects are not. Cross-field rules (``max >= initial``, a declared group, a
command or a url) are checked by the loader, not the schema.
"""

from __future__ import annotations

import functools
from types import NoneType, UnionType
from typing import Any, Literal, Union, get_args, get_origin, get_type_hints

import attrs

from mcpvisor.specs.policy import STRATEGIES, Backoff, RestartPolicy, Timeouts
from mcpvisor.specs.servers import DEFAULT_MAX_MESSAGE_BYTES, PROTOCOL_ERAS, _Supervised

NAME_PATTERN = r"^(?!.*__)[A-Za-z0-9_-]*[A-Za-z0-9-]$"
"""Server and group names: ``[A-Za-z0-9_-]+``, no ``__``, not ending in ``_``."""

_BOUNDS: dict[tuple[type, str], dict[str, Any]] = {
    (Backoff, "initial"): {"minimum": 0},
    (Backoff, "max"): {"minimum": 0},
    (Backoff, "multiplier"): {"minimum": 1},
    (Backoff, "jitter"): {"minimum": 0, "maximum": 1},
    (RestartPolicy, "max_restarts"): {"minimum": 0},
    (RestartPolicy, "within"): {"exclusiveMinimum": 0},
    (RestartPolicy, "reset_after"): {"minimum": 0},
    (Timeouts, "probe_misses"): {"minimum": 1},
    (_Supervised, "idle_shutdown"): {"exclusiveMinimum": 0},
    (_Supervised, "max_concurrency"): {"minimum": 1},
    (_Supervised, "max_isolated"): {"minimum": 1},
}
_POSITIVE_TIMEOUTS = (
    "connect",
    "initialize",
    "request",
    "shutdown",
    "probe_timeout",
    "probe_interval",
)
_NOT_KEYS = frozenset({"name", "secrets"})
_STRINGS = {"type": "string"}
_STRING_LIST = {"type": "array", "items": _STRINGS}
_STRING_MAP = {"type": "object", "additionalProperties": _STRINGS}
_HOST_KEYS: dict[str, Any] = {
    "command": {**_STRINGS, "description": "stdio: the program to run"},
    "args": {**_STRING_LIST, "description": "stdio: its arguments"},
    "env": {**_STRING_MAP, "description": "stdio: environment values (secrets, masked)"},
    "cwd": {**_STRINGS, "description": "stdio: working directory"},
    "max_message_bytes": {
        "type": "integer",
        "minimum": 1024,
        "default": DEFAULT_MAX_MESSAGE_BYTES,
        "description": "stdio: the largest JSON-RPC message read from the server",
    },
    "url": {**_STRINGS, "description": "http/sse: the endpoint"},
    "headers": {**_STRING_MAP, "description": "http/sse: request headers (secrets, masked)"},
    "type": {
        "enum": ["stdio", "http", "streamable-http", "streamable_http", "streamableHttp", "sse"]
    },
    "transport": {
        "enum": ["stdio", "http", "streamable-http", "streamable_http", "streamableHttp", "sse"]
    },
    "disabled": {"type": "boolean", "default": False},
}


def _type_schema(tp: Any) -> dict[str, Any]:
    origin = get_origin(tp)
    if origin is Literal:
        return {"enum": list(get_args(tp))}
    if origin in (Union, UnionType):
        options = [o for o in get_args(tp) if o is not NoneType]
        (inner,) = options
        schema = _type_schema(inner)
        return {"anyOf": [schema, {"type": "null"}]} if NoneType in get_args(tp) else schema
    if attrs.has(tp):
        return {"$ref": f"#/$defs/{tp.__name__.lower()}"}
    simple = {bool: "boolean", int: "integer", float: "number", str: "string"}
    return {"type": simple[tp]}


def _object(cls: type) -> dict[str, Any]:
    hints = get_type_hints(cls)
    properties: dict[str, Any] = {}
    for field in attrs.fields(cls):
        if field.name in _NOT_KEYS:
            continue
        schema = _type_schema(hints[field.name])
        bounds = dict(_BOUNDS.get((cls, field.name), {}))
        if cls is Timeouts and field.name in _POSITIVE_TIMEOUTS:
            bounds = {"exclusiveMinimum": 0}
        if bounds:
            if "anyOf" in schema:
                schema["anyOf"][0].update(bounds)
            else:
                schema.update(bounds)
        if cls is _Supervised and field.name == "protocol":
            schema = {"enum": list(PROTOCOL_ERAS)}
        if cls is _Supervised and field.name == "group":
            schema = {"anyOf": [{"type": "string", "pattern": NAME_PATTERN}, {"type": "null"}]}
        default: object = field.default
        if isinstance(default, int | float | str | bool) or default is None:
            schema["default"] = default
        properties[field.name] = schema
    return {"type": "object", "properties": properties, "additionalProperties": False}


@functools.cache
def _schema() -> dict[str, Any]:
    supervision = _object(_Supervised)
    server = {
        "type": "object",
        "properties": {**_HOST_KEYS, **supervision["properties"]},
        # Other hosts' keys (autoApprove, description...) are allowed, and ignored.
        "additionalProperties": True,
    }
    servers = {
        "type": "object",
        "propertyNames": {"pattern": NAME_PATTERN},
        "additionalProperties": {"$ref": "#/$defs/server"},
    }
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "MCP servers supervised by mcpvisor",
        "description": (
            "A Claude Desktop / Cursor (mcpServers), VS Code (servers) or Codex (mcp_servers) "
            "config, with mcpvisor's supervision keys per server and an optional mcpvisor "
            "section of defaults and groups."
        ),
        "type": "object",
        "properties": {
            "mcpServers": servers,
            "servers": servers,
            "mcp_servers": servers,
            "mcpvisor": {
                "type": "object",
                "properties": {
                    "defaults": {"$ref": "#/$defs/supervision"},
                    "groups": {
                        "type": "object",
                        "propertyNames": {"pattern": NAME_PATTERN},
                        "additionalProperties": {"enum": list(STRATEGIES)},
                    },
                },
                "additionalProperties": False,
            },
        },
        "$defs": {
            "supervision": supervision,
            "server": server,
            "restartpolicy": _object(RestartPolicy),
            "backoff": _object(Backoff),
            "timeouts": _object(Timeouts),
        },
    }


def config_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of a config file, as a fresh dict."""
    import copy

    return copy.deepcopy(_schema())


__all__ = ["NAME_PATTERN", "config_schema"]
