"""What to supervise: one frozen spec per server, and the supervisor spec that holds them.

Specs validate themselves at construction and raise :class:`ConfigError` naming the server and
the field. Their reprs mask environment and header values, which are often credentials.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import Any, Literal, TypeAlias
from urllib.parse import urlsplit

import attrs

from mcpvisor.specs.errors import ConfigError, _Checker
from mcpvisor.specs.policy import STRATEGIES, RestartPolicy, Strategy, Timeouts

StartMode = Literal["eager", "lazy"]
"""``eager`` servers start with the supervisor; ``lazy`` ones on their first request."""

START_MODES: tuple[StartMode, ...] = ("eager", "lazy")

PROTOCOL_ERAS: tuple[str, ...] = ("auto", "legacy", "2026-07-28")
"""``protocol`` values: ``auto`` probes ``server/discover`` and falls back to the ``initialize``
handshake (a server that ignores unknown methods costs the SDK's 10 s probe); ``legacy`` goes
straight to the handshake (2025-era servers); a modern version string adopts that era directly."""

DEFAULT_MAX_MESSAGE_BYTES = 256 * 1024 * 1024
"""The default cap on one stdio JSON-RPC message: room for a large media file, base64-encoded."""
NAME_SEPARATOR = "__"
"""Joins a server name and a tool name into a qualified name: ``files__read_file``."""

_NAME = re.compile(r"[A-Za-z0-9_-]+")


def name_problem(name: object) -> str | None:
    """Why ``name`` cannot name a server or group, or None if it can."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        return "must match [A-Za-z0-9_-]+"
    if NAME_SEPARATOR in name:
        return f"must not contain {NAME_SEPARATOR!r} (it separates server and tool names)"
    if name.endswith("_"):
        return "must not end with '_' (server__tool names would be ambiguous)"
    return None


def qualify(server: str, tool: str) -> str:
    """The namespaced name of ``tool`` on ``server``: ``files__read_file``."""
    return f"{server}{NAME_SEPARATOR}{tool}"


def split_qualified(name: str) -> tuple[str, str] | None:
    """``(server, tool)`` from a :func:`qualify`-d name, or None if it is not one.

    Unambiguous for every accepted server name, which contains no ``__`` and does not end in
    ``_``: the first ``__`` is the separator, whatever the tool name holds.
    """
    server, sep, tool = name.partition(NAME_SEPARATOR)
    if not sep or not server or not tool:
        return None
    return server, tool


def _str_tuple(value: Iterable[str]) -> tuple[str, ...]:
    # A typed wrapper: with a bare ``converter=tuple`` mypy's attrs plugin rejects every
    # argument (``expected "_T_co"``).
    return tuple(value)


def _frozen_str_map(value: Mapping[str, str] | None) -> Mapping[str, str]:
    return MappingProxyType(dict(value or {}))


def _masked(value: Mapping[str, str]) -> str:
    return "{" + ", ".join(f"{k!r}: '***'" for k in value) + "}"


def redact_url(url: object) -> str:
    """``url`` without its userinfo and query values, which may carry credentials."""
    if not isinstance(url, str):
        return "<invalid>"
    try:
        parts = urlsplit(url)
        netloc = parts.netloc.rpartition("@")[2]
        query = "&".join(f"{kv.partition('=')[0]}=***" for kv in parts.query.split("&") if kv)
        return parts._replace(netloc=netloc, query=query).geturl()
    except ValueError:
        return "<invalid>"


def _url_repr(url: object) -> str:
    return repr(redact_url(url))


def _frozen_secrets(value: Iterable[str] | None) -> frozenset[str]:
    return frozenset(v for v in (value or ()) if isinstance(v, str) and v)


def _masked_value(value: object, mask: Any) -> object:
    if isinstance(value, str):
        return mask(value)
    if isinstance(value, tuple):
        return tuple(_masked_value(v, mask) for v in value)
    return value


def _str_map_problems(c: _Checker, value: Mapping[str, str], field: str) -> None:
    for key, item in value.items():
        c.require(isinstance(key, str) and bool(key), f"{field}", "keys must be non-empty strings")
        # Never echo the value itself: it may be a secret.
        c.require(isinstance(item, str), f"{field}.{key}", "must be a string")


@attrs.frozen(kw_only=True)
class _Supervised:
    """The supervision fields every server spec shares.

    - ``required``: the supervisor cannot run without this server. Failing to start it fails
      ``open_supervisor``; dropping it at runtime escalates.
    - ``group``: a group declared in :class:`SupervisorSpec` ``groups``, whose strategy decides
      which siblings restart with it. None means one-for-one.
    - ``restart`` / ``timeouts``: see :class:`RestartPolicy` and :class:`Timeouts`.
    - ``start``: ``"lazy"`` defers the first start to the first request.
    - ``idle_shutdown``: stop the server after this many seconds without a request; the next
      request starts it again. None keeps it running.
    - ``max_concurrency``: requests served at once; more wait their turn.
    - ``max_isolated``: isolated sessions open at once; more callers wait.
    - ``protocol``: how the protocol era is negotiated; one of :data:`PROTOCOL_ERAS`.
    - ``secrets``: values to treat as credentials wherever they appear (in ``args``, the url,
      ``cwd``...), on top of env and header values and URL credentials. :func:`load_config`
      records every value that came from ``${VAR}`` expansion here. Masked in the repr and in
      server output; left out of equality and of :func:`dump_config`.
    """

    name: str
    required: bool = False
    group: str | None = None
    restart: RestartPolicy = attrs.field(factory=RestartPolicy)
    timeouts: Timeouts = attrs.field(factory=Timeouts)
    start: StartMode = "eager"
    idle_shutdown: float | None = None
    max_concurrency: int = 32
    max_isolated: int = 4
    protocol: str = "auto"
    secrets: frozenset[str] = attrs.field(
        factory=frozenset, converter=_frozen_secrets, eq=False, hash=False, repr=False
    )

    def __repr__(self) -> str:
        # Each string field is masked before repr() escapes it, so that a secret holding a
        # quote or a backslash is still found; env and header values are masked whole.
        from mcpvisor.specs.secrets import Redactor

        mask = Redactor(self)  # type: ignore[arg-type]
        shown = []
        for field in attrs.fields(type(self)):
            if not field.repr:
                continue
            value = _masked_value(getattr(self, field.name), mask)
            text = field.repr(value) if callable(field.repr) else repr(value)
            shown.append(f"{field.name}={text}")
        return f"{type(self).__name__}({', '.join(shown)})"

    def _common_problems(self, c: _Checker) -> None:
        problem = name_problem(self.name)
        c.require(problem is None, "name", problem or "")
        c.require(isinstance(self.required, bool), "required", "must be true or false")
        if self.group is not None:
            problem = name_problem(self.group)
            c.require(problem is None, "group", problem or "")
        c.require(isinstance(self.restart, RestartPolicy), "restart", "must be a RestartPolicy")
        c.require(isinstance(self.timeouts, Timeouts), "timeouts", "must be a Timeouts")
        c.require(self.start in START_MODES, "start", "must be one of eager, lazy")
        c.require(
            self.idle_shutdown is None
            or (
                isinstance(self.idle_shutdown, int | float)
                and not isinstance(self.idle_shutdown, bool)
                and self.idle_shutdown > 0
            ),
            "idle_shutdown",
            "must be a number > 0, or null",
        )
        for field in ("max_concurrency", "max_isolated"):
            value = getattr(self, field)
            c.require(
                isinstance(value, int) and not isinstance(value, bool) and value >= 1,
                field,
                "must be an integer >= 1",
            )
        if self.protocol not in PROTOCOL_ERAS:
            from difflib import get_close_matches

            message = "must be one of " + ", ".join(PROTOCOL_ERAS)
            close = (
                get_close_matches(self.protocol, PROTOCOL_ERAS, n=1)
                if isinstance(self.protocol, str)
                else []
            )
            c.require(
                False, "protocol", f"{message}; did you mean {close[0]!r}?" if close else message
            )

    def _finish(self, c: _Checker) -> None:
        label = self.name if isinstance(self.name, str) and self.name else "<unnamed>"
        c.raise_if_any(prefix=label)


@attrs.frozen(kw_only=True, repr=False)
class StdioSpec(_Supervised):
    """A server run as a subprocess speaking MCP over stdin/stdout.

    The child gets only the SDK's safe base environment (HOME, LOGNAME, PATH, SHELL, TERM,
    USER) plus ``env``: the host's own secrets are never inherited. It runs in its own process
    group so that teardown reaches its grandchildren.
    """

    command: str
    args: tuple[str, ...] = attrs.field(default=(), converter=_str_tuple)
    # Left out of the hash (a mappingproxy is unhashable) but kept in equality: specs stay
    # usable as dict keys.
    env: Mapping[str, str] = attrs.field(
        factory=dict, converter=_frozen_str_map, repr=_masked, hash=False
    )
    cwd: str | None = None
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES
    """The largest JSON-RPC message read from the server's stdout; a larger one fails only the
    request it answers (see :data:`DEFAULT_MAX_MESSAGE_BYTES`)."""

    def __attrs_post_init__(self) -> None:
        c = _Checker()
        self._common_problems(c)
        c.require(
            isinstance(self.max_message_bytes, int)
            and not isinstance(self.max_message_bytes, bool)
            and self.max_message_bytes >= 1024,
            "max_message_bytes",
            "must be an integer >= 1024",
        )
        c.require(
            isinstance(self.command, str) and bool(self.command.strip()),
            "command",
            "must be a non-empty string",
        )
        c.require(all(isinstance(a, str) for a in self.args), "args", "must be strings")
        _str_map_problems(c, self.env, "env")
        c.require(self.cwd is None or isinstance(self.cwd, str), "cwd", "must be a string")
        self._finish(c)


def _url_problems(c: _Checker, url: object) -> None:
    ok = False
    if isinstance(url, str):
        try:
            parts = urlsplit(url)
            _ = parts.port  # raises ValueError unless the port is a number in 0-65535
            ok = parts.scheme in ("http", "https") and bool(parts.hostname)
        except ValueError:
            ok = False
    c.require(ok, "url", "must be an http:// or https:// URL with a host")


@attrs.frozen(kw_only=True, repr=False)
class _Remote(_Supervised):
    """The fields of a server reached over HTTP; ``headers`` (often a token) are masked."""

    url: str = attrs.field(repr=_url_repr)
    headers: Mapping[str, str] = attrs.field(
        factory=dict, converter=_frozen_str_map, repr=_masked, hash=False
    )

    def __attrs_post_init__(self) -> None:
        c = _Checker()
        self._common_problems(c)
        _url_problems(c, self.url)
        _str_map_problems(c, self.headers, "headers")
        self._finish(c)


@attrs.frozen(kw_only=True, repr=False)
class HttpSpec(_Remote):
    """A server reached over streamable HTTP. ``headers`` (often a bearer token) are masked."""


@attrs.frozen(kw_only=True, repr=False)
class SseSpec(_Remote):
    """A server reached over the legacy HTTP+SSE transport. Supported, not recommended."""


@attrs.frozen(kw_only=True, repr=False)
class InProcessSpec(_Supervised):
    """A server object in this process: an ``mcp.server.MCPServer`` or low-level ``Server``.

    For embedding and tests; there is no process to crash, but the session can still end.
    """

    server: Any = attrs.field(eq=False)

    def __attrs_post_init__(self) -> None:
        c = _Checker()
        self._common_problems(c)
        c.require(_is_mcp_server(self.server), "server", "must be an MCPServer or Server object")
        self._finish(c)


def _is_mcp_server(obj: object) -> bool:
    from mcp.server import Server
    from mcp.server.mcpserver import MCPServer

    return isinstance(obj, MCPServer | Server)


ServerSpec: TypeAlias = StdioSpec | HttpSpec | SseSpec | InProcessSpec
"""Any one server's spec."""

SERVER_SPEC_TYPES: tuple[type[ServerSpec], ...] = (StdioSpec, HttpSpec, SseSpec, InProcessSpec)


def _spec_tuple(value: Iterable[ServerSpec]) -> tuple[ServerSpec, ...]:
    return tuple(value)


def _frozen_groups(value: Mapping[str, Strategy] | None) -> Mapping[str, Strategy]:
    return MappingProxyType(dict(value or {}))


@attrs.frozen
class SupervisorSpec:
    """Every server to supervise, in declared order, and the strategy of each group.

    Declared order matters: servers start in it, stop in reverse, and ``rest_for_one`` restarts
    the failed member and the ones declared after it.
    """

    servers: tuple[ServerSpec, ...] = attrs.field(converter=_spec_tuple)
    groups: Mapping[str, Strategy] = attrs.field(factory=dict, converter=_frozen_groups, hash=False)

    def __attrs_post_init__(self) -> None:
        c = _Checker()
        seen: set[str] = set()
        for i, spec in enumerate(self.servers):
            if not isinstance(spec, SERVER_SPEC_TYPES):
                c.require(False, f"servers[{i}]", "must be a server spec")
                continue
            c.require(spec.name not in seen, f"servers.{spec.name}", "duplicate server name")
            seen.add(spec.name)
            if spec.group is not None and spec.group not in self.groups:
                c.require(
                    False, f"servers.{spec.name}.group", _unknown("group", spec.group, self.groups)
                )
        for group, strategy in self.groups.items():
            problem = name_problem(group)
            c.require(problem is None, f"groups.{group}", problem or "")
            c.require(
                strategy in STRATEGIES, f"groups.{group}", f"must be one of {', '.join(STRATEGIES)}"
            )
        c.raise_if_any()

    def __getitem__(self, name: str) -> ServerSpec:
        for spec in self.servers:
            if spec.name == name:
                return spec
        raise KeyError(name)

    @property
    def names(self) -> tuple[str, ...]:
        """Server names in declared order."""
        return tuple(s.name for s in self.servers)


def _unknown(kind: str, value: str, known: Iterable[str]) -> str:
    from difflib import get_close_matches

    message = f"unknown {kind} {value!r}"
    close = get_close_matches(value, list(known), n=1)
    if close:
        message += f"; did you mean {close[0]!r}?"
    return message


__all__ = [
    "NAME_SEPARATOR",
    "ConfigError",
    "HttpSpec",
    "InProcessSpec",
    "ServerSpec",
    "SseSpec",
    "StartMode",
    "StdioSpec",
    "SupervisorSpec",
]
