"""How the host answers what servers ask of their client: sampling, elicitation, roots, logs.

MCP servers send requests the other way too: ``sampling/createMessage`` (run the host's LLM),
``elicitation/create`` (ask the user), ``roots/list`` (which directories may I use), and they
send ``notifications/message`` log records. A :class:`ClientHandlers` value says how the host
answers each. It is set once on the :class:`~mcpvisor.SupervisorSpec` and may be overridden
field by field on any server spec. mcpvisor advertises to each server exactly the client
capabilities that server's effective handlers provide, so a server never offers a tool whose
question nobody would answer.

Handlers are plain Python callables and receive a :class:`HandlerContext` naming the server
(and the request, where the SDK tells) that asked. One that raises, returns garbage or takes
longer than ``timeout`` seconds answers the server with a JSON-RPC error; the session goes on.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any, Final, Literal, TypeAlias, get_args

import attrs
import mcp_types as types

from mcpvisor.specs.errors import ConfigError, _Checker

LogLevel: TypeAlias = Literal[
    "debug", "info", "notice", "warning", "error", "critical", "alert", "emergency"
]
"""The syslog levels MCP log records carry, least severe first."""

LOG_LEVELS: Final[tuple[LogLevel, ...]] = get_args(LogLevel)

CAPABILITIES: Final = ("sampling", "elicitation", "roots", "logging")
"""The handler fields a server spec (or a config file) may switch off one by one."""


@attrs.frozen
class HandlerContext:
    """Who asked: passed to every sampling, elicitation and roots handler.

    - ``server``: the configured server name (an isolated session reports the server it copies).
    - ``session``: the session's own label, ``server`` or ``server~N`` for an isolated one.
    - ``request_id``: the server's JSON-RPC id for its question, or the input key of a
      2026-07-28 input-required round; None when the SDK does not say.
    - ``protocol_version``: the era the session speaks.
    - ``routed``: True when the handler was given with the request that was running (see
      ``handlers=`` on :meth:`~mcpvisor.SupervisorClient.call_tool`), False for the
      supervisor's or server's own handlers.
    - ``meta``: the ``_meta`` of the server's question, if any.
    """

    server: str
    session: str
    request_id: str | int | None = None
    protocol_version: str | None = None
    routed: bool = False
    meta: Mapping[str, Any] | None = attrs.field(default=None, eq=False)


@attrs.frozen
class ServerLog:
    """One ``notifications/message`` record a server sent, as handed to ``logging``.

    ``logger`` is the server's own logger name, if it gave one; ``data`` is whatever JSON value
    it sent (often a string).
    """

    server: str
    session: str
    level: LogLevel
    data: Any
    logger: str | None = None


SamplingHandler: TypeAlias = Callable[
    [HandlerContext, types.CreateMessageRequestParams],
    Awaitable[types.CreateMessageResult | types.CreateMessageResultWithTools | types.ErrorData],
]
"""``async def sampling(ctx, params) -> CreateMessageResult``: run the host's model."""

ElicitationHandler: TypeAlias = Callable[
    [HandlerContext, types.ElicitRequestParams], Awaitable[types.ElicitResult | types.ErrorData]
]
"""``async def elicit(ctx, params) -> ElicitResult``: ask the user (accept, decline, cancel)."""

RootsHandler: TypeAlias = Callable[[HandlerContext], Awaitable[Iterable[str | types.Root]]]
"""``async def roots(ctx) -> ["file:///data", Root(...)]``: the roots this server may use."""

LoggingHandler: TypeAlias = Callable[[ServerLog], object]
"""``def on_log(record)``: called synchronously for each server log record that is kept. It
must not block; a raising callback is logged and ignored."""


def _roots(value: object) -> object:
    """Static roots become a tuple of ``Root``; callables and None pass through."""
    if value is None or callable(value) or isinstance(value, str):
        return value
    if isinstance(value, Iterable):
        out: list[object] = []
        for item in value:
            if isinstance(item, str):
                try:
                    out.append(types.Root(uri=item))  # type: ignore[arg-type]
                except ValueError:
                    out.append(item)  # reported by the check below
            else:
                out.append(item)
        return tuple(out)
    return value


def _strings(value: Iterable[str]) -> frozenset[str]:
    return frozenset(value)


@attrs.frozen(kw_only=True)
class ClientHandlers:
    """The host's answers to server-to-client requests; every field is optional.

    - ``sampling``: a :data:`SamplingHandler`; advertises the ``sampling`` capability.
    - ``elicitation``: an :data:`ElicitationHandler`; advertises ``elicitation`` (form and url).
    - ``roots``: a static list of root URIs (``["file:///data"]``) or a :data:`RootsHandler`;
      advertises ``roots`` with ``listChanged``. An empty list still advertises roots (the
      server is told it may use none).
    - ``logging``: a :data:`LoggingHandler` that also receives every server log record. Records
      become structlog events ``server.log`` under the ``mcpvisor`` logger whether or not it is
      set.
    - ``log_level``: the least severe level to ask servers for: ``logging/setLevel`` after every
      (re)start on 2025-era sessions, the per-request opt-in on 2026-07-28 ones (which send no
      log records at all without one). None leaves the server's default (2025 era) and opts in
      to nothing (2026 era).
    - ``timeout``: seconds a sampling, elicitation or roots handler may take before the server
      gets an error instead (default 300). Handlers given with one call use their own
      ``timeout`` when it is set.
    - ``disabled``: names from :data:`CAPABILITIES` this spec switches off, whatever a less
      specific spec set: a server spec's ``ClientHandlers(disabled={"sampling"})`` hides the
      supervisor's sampling handler from that one server.

    On a server spec, a field left at None inherits the supervisor's (see :meth:`over`).

    Sampling, elicitation and roots handlers are async (``async def``, or any callable that
    returns an awaitable). A sync one is called, then refused: the server is told the handler
    is not async and the event ``server.handler_not_async`` is logged at error level.
    """

    sampling: SamplingHandler | None = attrs.field(default=None, eq=False)
    elicitation: ElicitationHandler | None = attrs.field(default=None, eq=False)
    roots: tuple[types.Root, ...] | RootsHandler | None = attrs.field(
        default=None, converter=_roots, eq=False
    )
    logging: LoggingHandler | None = attrs.field(default=None, eq=False)
    log_level: LogLevel | None = None
    timeout: float | None = None
    disabled: frozenset[str] = attrs.field(default=frozenset(), converter=_strings)

    def __attrs_post_init__(self) -> None:
        c = _Checker()
        for field in ("sampling", "elicitation", "logging"):
            value = getattr(self, field)
            c.require(value is None or callable(value), field, "must be a callable or None")
        c.require(
            not inspect.iscoroutinefunction(self.logging),
            "logging",
            "must be a plain function: it is called synchronously, so an async one never runs",
        )
        roots = self.roots
        if roots is not None and not callable(roots):
            ok = isinstance(roots, tuple) and all(isinstance(r, types.Root) for r in roots)
            c.require(ok, "roots", "must be a list of file:// URIs, a callable, or None")
        c.require(
            self.log_level is None or self.log_level in LOG_LEVELS,
            "log_level",
            "must be one of " + ", ".join(LOG_LEVELS),
        )
        c.require(
            self.timeout is None
            or (
                isinstance(self.timeout, int | float)
                and not isinstance(self.timeout, bool)
                and self.timeout > 0
            ),
            "timeout",
            "must be a number > 0",
        )
        unknown = sorted(self.disabled - set(CAPABILITIES))
        c.require(not unknown, "disabled", f"unknown {unknown}; use {', '.join(CAPABILITIES)}")
        c.raise_if_any(prefix="handlers")

    def over(self, base: ClientHandlers | None) -> ClientHandlers:
        """These handlers with every unset field taken from ``base``, less what is disabled."""
        if base is None:
            merged = self
        else:
            merged = ClientHandlers(
                sampling=self.sampling if self.sampling is not None else base.sampling,
                elicitation=self.elicitation if self.elicitation is not None else base.elicitation,
                roots=self.roots if self.roots is not None else base.roots,
                logging=self.logging if self.logging is not None else base.logging,
                log_level=self.log_level if self.log_level is not None else base.log_level,
                timeout=self.timeout if self.timeout is not None else base.timeout,
                disabled=self.disabled | base.disabled,
            )
        if not merged.disabled:
            return merged
        off: dict[str, Any] = {name: None for name in merged.disabled}
        return attrs.evolve(merged, **off)

    @property
    def answer_timeout(self) -> float:
        """``timeout``, or the default of 300 s (a human may be answering an elicitation)."""
        return self.timeout if self.timeout is not None else DEFAULT_ANSWER_TIMEOUT

    @property
    def advertised(self) -> frozenset[str]:
        """The client capabilities these handlers make mcpvisor advertise."""
        names = ("sampling", "elicitation", "roots")
        return frozenset(n for n in names if getattr(self, n) is not None)


DEFAULT_ANSWER_TIMEOUT: Final = 300.0

NO_HANDLERS: Final = ClientHandlers()
"""Answer nothing: servers see no sampling, elicitation or roots capability."""


def handlers_from_config(entry: Mapping[str, Any], path: str) -> ClientHandlers | None:
    """The per-server override a config entry describes, or None if it sets none.

    Config files cannot hold callables, so they can only switch capabilities off
    (``"sampling": false``; ``true`` keeps the host's handler) and give static roots
    (``"roots": ["file:///data"]``) and a ``"log_level"``. Raises :class:`ConfigError` at
    ``path``.
    """
    c = _Checker()
    disabled: set[str] = set()
    kwargs: dict[str, Any] = {}
    seen = False
    for name in CAPABILITIES:
        if name not in entry:
            continue
        seen = True
        value = entry[name]
        if value is False:
            disabled.add(name)
        elif name == "roots" and isinstance(value, list):
            bad = [v for v in value if not isinstance(v, str) or not v.startswith("file://")]
            c.require(
                not bad, f"{path}.roots", "must be a list of file:// URIs such as file:///data"
            )
            kwargs["roots"] = tuple(v for v in value if isinstance(v, str))
        elif value is not True:
            what = "true, false or a list of URIs" if name == "roots" else "true or false"
            c.require(False, f"{path}.{name}", f"must be {what}")
    if "log_level" in entry:
        seen = True
        level = entry["log_level"]
        c.require(
            level in LOG_LEVELS, f"{path}.log_level", "must be one of " + ", ".join(LOG_LEVELS)
        )
        if level in LOG_LEVELS:
            kwargs["log_level"] = level
    c.raise_if_any()
    if not seen:
        return None
    try:
        return ClientHandlers(disabled=frozenset(disabled), **kwargs)
    except ConfigError as error:
        raise error.prefixed(path) from None


CONFIG_KEYS: Final = (*CAPABILITIES, "log_level")
"""Server keys in a config file that :func:`handlers_from_config` reads."""


def handlers_to_config(handlers: ClientHandlers | None) -> dict[str, Any]:
    """The config-file keys for what of ``handlers`` a file can hold (the inverse above)."""
    if handlers is None:
        return {}
    out: dict[str, Any] = {name: False for name in CAPABILITIES if name in handlers.disabled}
    if isinstance(handlers.roots, tuple):
        out["roots"] = [str(root.uri) for root in handlers.roots]
    if handlers.log_level is not None:
        out["log_level"] = handlers.log_level
    return out


__all__ = [
    "CAPABILITIES",
    "LOG_LEVELS",
    "NO_HANDLERS",
    "ClientHandlers",
    "ElicitationHandler",
    "HandlerContext",
    "LogLevel",
    "LoggingHandler",
    "RootsHandler",
    "SamplingHandler",
    "ServerLog",
]
