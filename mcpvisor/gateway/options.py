"""The gateway's own section of a config file: namespacing and per-server tool filters.

It lives under the top-level ``mcpvisor`` key next to ``defaults`` and ``groups``::

    "mcpvisor": {
      "gateway": {
        "namespace": "auto",
        "servers": {"files": {"tools": {"allow": ["read_*"], "deny": ["read_secrets"]}}}
      }
    }

Parsed here, not by the config loader, so the gateway's settings stay with the gateway. Pure:
no I/O but reading the file, and every problem is reported at once with its path.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Collection, Mapping
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Literal, TypeAlias

import attrs

from mcpvisor.specs import ConfigError, Problem

Namespace: TypeAlias = Literal["auto", "always", "never"]
"""``auto``: ``server__tool`` unless the gateway fronts a single server; ``always``; ``never``
(names are passed as they are; the first server offering a name wins)."""

_SECTION_KEYS = ("namespace", "servers")
_SERVER_KEYS = ("tools",)
_FILTER_KEYS = ("allow", "deny")
_NAMESPACES: tuple[Namespace, ...] = ("auto", "always", "never")


@attrs.frozen
class ToolFilter:
    """Which of a server's tools the gateway offers: shell-style patterns (``read_*``).

    With ``allow`` set only matching tools are offered; ``deny`` then removes matching ones.
    A tool that is not offered is neither listed nor callable through the gateway.
    """

    allow: tuple[str, ...] | None = None
    deny: tuple[str, ...] = ()

    def permits(self, tool: str) -> bool:
        """Whether ``tool`` is offered."""
        if self.allow is not None and not any(fnmatchcase(tool, p) for p in self.allow):
            return False
        return not any(fnmatchcase(tool, p) for p in self.deny)


OPEN = ToolFilter()
"""The filter of a server with no ``tools`` settings: everything is offered."""


@attrs.frozen
class GatewayOptions:
    """How the gateway presents the supervised servers to its clients."""

    namespace: Namespace = "auto"
    tools: Mapping[str, ToolFilter] = attrs.field(factory=dict)

    def tool_filter(self, server: str) -> ToolFilter:
        """The filter for ``server``'s tools (:data:`OPEN` when none is configured)."""
        return self.tools.get(server, OPEN)

    def namespaced(self, server_count: int) -> bool:
        """Whether names carry their server's prefix when fronting ``server_count`` servers."""
        if self.namespace == "auto":
            return server_count != 1
        return self.namespace == "always"


def parse_options(raw: object, servers: Collection[str]) -> GatewayOptions:
    """The options in ``raw`` (the ``mcpvisor.gateway`` value, or None for the defaults).

    Raises :class:`ConfigError` listing every problem, each with its path; a server name that
    the config does not define is one, so a typo never silently filters nothing.
    """
    path = "mcpvisor.gateway"
    if raw is None:
        return GatewayOptions()
    problems: list[Problem] = []
    if not isinstance(raw, Mapping):
        raise ConfigError([Problem(path, "must be an object with 'namespace' and/or 'servers'")])
    _unknown(raw, _SECTION_KEYS, path, problems)
    namespace = raw.get("namespace", "auto")
    if namespace is True or namespace is False:
        namespace = "always" if namespace else "never"
    if namespace not in _NAMESPACES:
        problems.append(
            Problem(f"{path}.namespace", f"must be one of {', '.join(_NAMESPACES)} (or a boolean)")
        )
        namespace = "auto"
    filters: dict[str, ToolFilter] = {}
    per_server = raw.get("servers", {})
    if not isinstance(per_server, Mapping):
        problems.append(Problem(f"{path}.servers", "must be an object keyed by server name"))
        per_server = {}
    for name, settings in per_server.items():
        where = f"{path}.servers.{name}"
        if name not in servers:
            known = ", ".join(sorted(servers)) or "none"
            problems.append(Problem(where, f"no server of that name (servers: {known})"))
            continue
        if not isinstance(settings, Mapping):
            problems.append(Problem(where, "must be an object"))
            continue
        _unknown(settings, _SERVER_KEYS, where, problems)
        tools = settings.get("tools")
        if tools is not None:
            found = _filter(tools, f"{where}.tools", problems)
            if found is not None:
                filters[str(name)] = found
    if problems:
        raise ConfigError(problems)
    return GatewayOptions(namespace=namespace, tools=filters)


def _filter(raw: object, path: str, problems: list[Problem]) -> ToolFilter | None:
    if not isinstance(raw, Mapping):
        problems.append(Problem(path, "must be an object with 'allow' and/or 'deny'"))
        return None
    _unknown(raw, _FILTER_KEYS, path, problems)
    allow = _patterns(raw.get("allow"), f"{path}.allow", problems)
    deny = _patterns(raw.get("deny"), f"{path}.deny", problems)
    return ToolFilter(allow=allow, deny=deny or ())


def _patterns(raw: object, path: str, problems: list[Problem]) -> tuple[str, ...] | None:
    if raw is None:
        return None
    if not isinstance(raw, list) or not all(isinstance(p, str) and p for p in raw):
        problems.append(Problem(path, "must be a list of tool names or patterns such as 'read_*'"))
        return None
    return tuple(raw)


def _unknown(
    raw: Mapping[object, object], keys: tuple[str, ...], path: str, out: list[Problem]
) -> None:
    for key in raw:
        if key not in keys:
            out.append(Problem(f"{path}.{key}", f"unknown key; expected one of {', '.join(keys)}"))


def read_options(config: str | Path, servers: Collection[str]) -> GatewayOptions:
    """The gateway options in config file ``config`` (JSON, JSONC or TOML).

    The loader has already accepted the file, so only the gateway section is examined here.
    """
    path = Path(config)
    text = path.read_text(encoding="utf-8-sig")
    if path.suffix.lower() == ".toml":
        data: object = tomllib.loads(text)
    else:
        from mcpvisor.specs._config_files import strip_jsonc

        data = json.loads(strip_jsonc(text))
    section = data.get("mcpvisor") if isinstance(data, Mapping) else None
    raw = section.get("gateway") if isinstance(section, Mapping) else None
    return parse_options(raw, servers)
