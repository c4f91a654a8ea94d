"""MCP operations as values: each knows its SDK call, its argument checks and its retry rule.

An operation is validated when it is built, so a caller's mistake (a missing name, arguments
that cannot travel as JSON) raises :class:`~mcpvisor.specs.errors.UsageError` in the caller's
task and never reaches a worker or a transport. What reaches the worker can be sent as is: a
bad call fails only itself, on every transport.

Adding an operation is one class here (plus a client method): its fields, its ``perform``.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar, Literal, TypeAlias, get_args

import attrs
import mcp_types as types
from mcp import Client
from mcp.shared.dispatcher import ProgressFnT
from pydantic import ValidationError

from mcpvisor.specs.errors import UsageError

if TYPE_CHECKING:
    from mcpvisor.workers.reports import Ready

ProgressCallback: TypeAlias = ProgressFnT
"""``progress(progress, total, message)`` for each progress notification of a call, awaited
when it returns an awaitable (see :func:`as_async_progress`)."""


def as_async_progress(fn: Callable[[float, float | None, str | None], object]) -> ProgressCallback:
    """``fn`` as the async callback the SDK awaits. An ``async def`` is used as it is; any
    other callable is called, and what it returns awaited only if it is awaitable, so a plain
    function is a progress callback too rather than an error the SDK logs at every notice."""
    if inspect.iscoroutinefunction(fn):
        return fn  # type: ignore[return-value]

    async def call(progress: float, total: float | None, message: str | None) -> None:
        result = fn(progress, total, message)
        if inspect.isawaitable(result):
            await result

    return call


def _progress(value: object) -> ProgressCallback | None:
    if value is None:
        return None
    if not callable(value):
        raise UsageError("progress", "must be a callable")
    return as_async_progress(value)


CacheMode: TypeAlias = Literal["use", "refresh", "bypass"]
"""How a listing treats the SDK client's response cache (see ``mcp.Client``)."""

MAX_JSON_DEPTH = 100
"""Nesting deeper than this is refused: parsers on the other side (Python's ``json``, pydantic)
give up somewhere past it, and no real tool takes such arguments."""

_CACHE_MODES = get_args(CacheMode)
_LOGGING_LEVELS = get_args(types.LoggingLevel)


def json_value(value: object, parameter: str) -> Any:
    """A plain copy of ``value`` (dicts, lists, str, int, float, bool, None) that JSON can carry.

    Raises :class:`UsageError` naming ``parameter`` (and where inside it) for a lone
    surrogate, a non-string key, a cycle, a non-finite float, a type JSON has no form for, or
    nesting past :data:`MAX_JSON_DEPTH`. The copy also means a caller who mutates its dict
    after the call cannot change what is sent.
    """
    try:
        return _plain_copy(value, 0)
    except _NotPlain:
        # The slow walk finds what is wrong and where; the fast one only knows that it is.
        return _Copier(parameter).copy(value, "", 0)


class _NotPlain(Exception):
    """Raised by :func:`_plain_copy` for anything it does not pass at once."""


def _plain_copy(value: object, depth: int) -> Any:
    """The copy :func:`json_value` makes, for the values nearly every call carries: exact
    dicts, lists, ASCII text, ints, bools and finite floats. A cycle ends at the depth limit."""
    kind = type(value)
    if kind is str:
        if value.isascii():  # type: ignore[attr-defined]
            return value
        raise _NotPlain
    if value is None or kind is int or kind is bool:
        return value
    if kind is float:
        if math.isfinite(value):  # type: ignore[arg-type]
            return value
        raise _NotPlain
    if depth >= MAX_JSON_DEPTH:
        raise _NotPlain
    if kind is dict:
        out = {}
        for key, item in value.items():  # type: ignore[attr-defined]
            if type(key) is not str or not key.isascii():
                raise _NotPlain
            # Scalars inline: a call per argument is most of what this copy costs.
            item_kind = type(item)
            if item_kind is int or item_kind is bool or (item_kind is str and item.isascii()):
                out[key] = item
            else:
                out[key] = _plain_copy(item, depth + 1)
        return out
    if kind is list:
        return [_plain_copy(item, depth + 1) for item in value]  # type: ignore[attr-defined]
    raise _NotPlain


class _Copier:
    def __init__(self, parameter: str) -> None:
        self.parameter = parameter
        self.open_ids: set[int] = set()

    def fail(self, where: str, problem: str) -> UsageError:
        if len(where) > 60:
            where = where[:57] + "..."
        return UsageError(self.parameter, f"{problem} (at {where})" if where else problem)

    def copy(self, value: object, where: str, depth: int) -> Any:
        if value is None or isinstance(value, bool | int):
            return value
        if isinstance(value, str):
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                raise self.fail(
                    where, "text with a lone surrogate, which UTF-8 cannot carry"
                ) from None
            return value
        if isinstance(value, float):
            if not math.isfinite(value):
                raise self.fail(where, "JSON has no NaN or infinity")
            return value
        if depth >= MAX_JSON_DEPTH:
            raise self.fail(where, f"nested deeper than {MAX_JSON_DEPTH} levels")
        if id(value) in self.open_ids:
            raise self.fail(where, "contains itself, and a cycle cannot be sent as JSON")
        if isinstance(value, Mapping):
            self.open_ids.add(id(value))
            out: dict[str, Any] = {}
            for key, item in value.items():
                if not isinstance(key, str):
                    raise self.fail(
                        where, f"a key of type {type(key).__name__}; JSON keys are text"
                    )
                key = self.copy(key, f"{where} key", depth + 1)
                out[key] = self.copy(item, f"{where}.{key}", depth + 1)
            self.open_ids.discard(id(value))
            return out
        if isinstance(value, list | tuple):
            self.open_ids.add(id(value))
            items = [self.copy(item, f"{where}[{i}]", depth + 1) for i, item in enumerate(value)]
            self.open_ids.discard(id(value))
            return items
        raise self.fail(where, f"a {type(value).__name__}, which has no JSON form")


def _json_object(parameter: str, value: object) -> dict[str, Any] | None:
    if value is None:
        return None
    if type(value) is not dict and not isinstance(value, Mapping):
        raise UsageError(parameter, f"must be a mapping, not {type(value).__name__}")
    copied: dict[str, Any] = json_value(value, parameter)
    return copied


def _string_map(parameter: str, value: object) -> dict[str, str] | None:
    copied = _json_object(parameter, value)
    if copied is not None and not all(isinstance(item, str) for item in copied.values()):
        raise UsageError(parameter, "every value must be a string")
    return copied


def _arguments(value: object) -> dict[str, Any] | None:
    return _json_object("arguments", value)


def _meta(value: object) -> dict[str, Any] | None:
    return None if value is None else _json_object("meta", value)


def _prompt_arguments(value: object) -> dict[str, str] | None:
    return _string_map("arguments", value)


def _argument(value: object) -> dict[str, str]:
    return _string_map("argument", value) or {}


def _context_arguments(value: object) -> dict[str, str] | None:
    return _string_map("context_arguments", value)


def _text(parameter: str, value: object) -> None:
    if not isinstance(value, str) or not value:
        raise UsageError(parameter, "must be a non-empty string")
    if not value.isascii():
        json_value(value, parameter)


def _optional_text(parameter: str, value: object) -> None:
    if value is not None:
        _text(parameter, value)


def _alias(attribute: attrs.Attribute[Any]) -> str:
    return attribute.alias or attribute.name


def _check_name(_instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if type(value) is not str or not value or not value.isascii():
        _text(_alias(attribute), value)


def _check_optional_text(_instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    _optional_text(_alias(attribute), value)


def _check_cache_mode(_instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value not in _CACHE_MODES:
        raise UsageError(_alias(attribute), f"must be one of {', '.join(_CACHE_MODES)}")


@attrs.frozen
class Operation:
    """One MCP operation, ready to send. Subclasses are the operations a worker serves.

    - ``name``: what callers call it (``"call_tool"``), the key in :data:`OPERATIONS`.
    - ``method``: the MCP method it sends (``"tools/call"``).
    - ``retry_safe``: whether it may be sent again after a crash interrupted it. Reads are;
      ``call_tool`` is not, since a tool may have had effects before the server died.
    """

    name: ClassVar[str] = ""
    method: ClassVar[str] = ""
    retry_safe: ClassVar[bool] = True

    @property
    def target(self) -> str | None:
        """The tool or prompt name, or the resource uri, the operation is about; else None."""
        return None

    def perform(self, client: Client, ready: Ready) -> Awaitable[object]:
        """Send the operation on ``client``'s session: an awaitable of the SDK's result.

        Most operations return the SDK's own coroutine rather than awaiting it in a coroutine
        of their own: that frame would be resumed again at every step of every call.
        """
        raise NotImplementedError

    @classmethod
    def from_args(cls, args: Mapping[str, Any]) -> Operation:
        """Build from a mapping, as ``client.request(server, op, args)`` gets it.

        On a subclass, ``args`` holds its fields. On :class:`Operation` itself, ``args["op"]``
        names the operation and the other keys are its fields. Unknown keys, missing required
        ones and values of the wrong type raise :class:`UsageError` naming the key.
        """
        if not isinstance(args, Mapping):
            raise UsageError("args", f"must be a mapping, not {type(args).__name__}")
        if cls is Operation:
            rest = dict(args)
            op = rest.pop("op", None)
            if not isinstance(op, str) or op not in OPERATIONS:
                raise UsageError(
                    "op", f"unknown operation; expected one of {', '.join(OPERATIONS)}"
                )
            return OPERATIONS[op].from_args(rest)
        # Keys are the constructor's names: ``name`` for a tool or prompt, as MCP spells it.
        fields = {field.alias: field for field in attrs.fields(cls)}
        for key in args:
            if key not in fields:
                known = ", ".join(fields) or "none"
                raise UsageError(str(key), f"{cls.name} takes no such argument (it takes: {known})")
        for field in fields.values():
            if field.default is attrs.NOTHING and field.alias not in args:
                raise UsageError(field.alias, f"{cls.name} needs it")
        return cls(**args)


@attrs.frozen
class _Listing(Operation):
    """One page of a listing, as the SDK's ``List*Result``; ``next_cursor`` continues it."""

    cursor: str | None = attrs.field(default=None, validator=_check_optional_text)
    cache_mode: CacheMode = attrs.field(default="use", validator=_check_cache_mode)


@attrs.frozen
class ListTools(_Listing):
    """``tools/list``: one page of the server's tools."""

    name: ClassVar[str] = "list_tools"
    method: ClassVar[str] = "tools/list"

    def perform(self, client: Client, ready: Ready) -> Awaitable[object]:
        return client.list_tools(cursor=self.cursor, cache_mode=self.cache_mode)


@attrs.frozen
class ListResources(_Listing):
    """``resources/list``: one page of the server's resources."""

    name: ClassVar[str] = "list_resources"
    method: ClassVar[str] = "resources/list"

    def perform(self, client: Client, ready: Ready) -> Awaitable[object]:
        return client.list_resources(cursor=self.cursor, cache_mode=self.cache_mode)


@attrs.frozen
class ListResourceTemplates(_Listing):
    """``resources/templates/list``: one page of the server's resource templates."""

    name: ClassVar[str] = "list_resource_templates"
    method: ClassVar[str] = "resources/templates/list"

    def perform(self, client: Client, ready: Ready) -> Awaitable[object]:
        return client.list_resource_templates(cursor=self.cursor, cache_mode=self.cache_mode)


@attrs.frozen
class ListPrompts(_Listing):
    """``prompts/list``: one page of the server's prompts."""

    name: ClassVar[str] = "list_prompts"
    method: ClassVar[str] = "prompts/list"

    def perform(self, client: Client, ready: Ready) -> Awaitable[object]:
        return client.list_prompts(cursor=self.cursor, cache_mode=self.cache_mode)


@attrs.frozen
class CallTool(Operation):
    """``tools/call``: a ``CallToolResult``; one with ``is_error`` set is a result, not an error.

    Built as ``CallTool(name="read", arguments={...})``; the tool's name is kept as ``tool``
    because ``name`` is the operation's (``CallTool.name == "call_tool"``).

    ``meta`` is sent as the request's ``_meta``; ``progress`` receives the call's progress
    notifications. Never retried after a crash.
    """

    name: ClassVar[str] = "call_tool"
    method: ClassVar[str] = "tools/call"
    retry_safe: ClassVar[bool] = False

    tool: str = attrs.field(alias="name", validator=_check_name)
    arguments: Mapping[str, Any] | None = attrs.field(default=None, converter=_arguments)
    meta: Mapping[str, Any] | None = attrs.field(default=None, converter=_meta)
    progress: ProgressCallback | None = attrs.field(default=None, eq=False, converter=_progress)

    @property
    def target(self) -> str:
        return self.tool

    def perform(self, client: Client, ready: Ready) -> Awaitable[object]:
        arguments = dict(self.arguments) if self.arguments is not None else None
        meta: Any = dict(self.meta) if self.meta is not None else None
        if ready.modern:
            # The client drives 2026-07-28 input-required rounds and re-lists a tool whose
            # headers the server rejected.
            return client.call_tool(
                self.tool, arguments, progress_callback=self.progress, meta=meta
            )
        # The handshake era has neither, and the client's three frames around the session's
        # call would be resumed at every step of it.
        return client.session.call_tool(
            self.tool, arguments, progress_callback=self.progress, meta=meta
        )


@attrs.frozen
class ReadResource(Operation):
    """``resources/read``: a ``ReadResourceResult``."""

    name: ClassVar[str] = "read_resource"
    method: ClassVar[str] = "resources/read"

    uri: str = attrs.field(validator=_check_name)

    @property
    def target(self) -> str:
        return self.uri

    def perform(self, client: Client, ready: Ready) -> Awaitable[object]:
        return client.read_resource(self.uri)


@attrs.frozen
class GetPrompt(Operation):
    """``prompts/get``: a ``GetPromptResult``; prompt ``arguments`` are strings.

    Built as ``GetPrompt(name="review", arguments={...})``; the name is kept as ``prompt``.
    """

    name: ClassVar[str] = "get_prompt"
    method: ClassVar[str] = "prompts/get"

    prompt: str = attrs.field(alias="name", validator=_check_name)
    arguments: Mapping[str, str] | None = attrs.field(default=None, converter=_prompt_arguments)

    @property
    def target(self) -> str:
        return self.prompt

    def perform(self, client: Client, ready: Ready) -> Awaitable[object]:
        arguments = dict(self.arguments) if self.arguments is not None else None
        return client.get_prompt(self.prompt, arguments)


Reference: TypeAlias = types.PromptReference | types.ResourceTemplateReference


def _reference(value: object) -> Reference:
    if isinstance(value, types.PromptReference | types.ResourceTemplateReference):
        return value
    if not isinstance(value, Mapping):
        raise UsageError(
            "ref", "must be a PromptReference, a ResourceTemplateReference or a mapping"
        )
    plain = json_value(value, "ref")
    kind = plain.get("type")
    model: type[Reference]
    if kind == "ref/prompt":
        model = types.PromptReference
    elif kind == "ref/resource":
        model = types.ResourceTemplateReference
    else:
        raise UsageError("ref", "needs type 'ref/prompt' or 'ref/resource'")
    try:
        return model.model_validate(plain)
    except ValidationError as error:
        fields = ", ".join(".".join(map(str, e["loc"])) for e in error.errors()) or "?"
        raise UsageError("ref", f"is not a valid reference (check {fields})") from None


@attrs.frozen
class Complete(Operation):
    """``completion/complete``: suggestions for one argument of a prompt or resource template.

    ``argument`` is ``{"name": ..., "value": ...}``; ``ref`` a reference model or its mapping.
    """

    name: ClassVar[str] = "complete"
    method: ClassVar[str] = "completion/complete"

    ref: Reference = attrs.field(converter=_reference)
    argument: Mapping[str, str] = attrs.field(converter=_argument)
    context_arguments: Mapping[str, str] | None = attrs.field(
        default=None, converter=_context_arguments
    )

    @property
    def target(self) -> str:
        return self.ref.name if isinstance(self.ref, types.PromptReference) else self.ref.uri

    def perform(self, client: Client, ready: Ready) -> Awaitable[object]:
        context = dict(self.context_arguments) if self.context_arguments is not None else None
        return client.complete(self.ref, dict(self.argument), context)


def _check_level(_instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value not in _LOGGING_LEVELS:
        raise UsageError(_alias(attribute), f"must be one of {', '.join(_LOGGING_LEVELS)}")


@attrs.frozen
class SetLoggingLevel(Operation):
    """``logging/setLevel``: the least severe log message the server should send."""

    name: ClassVar[str] = "set_logging_level"
    method: ClassVar[str] = "logging/setLevel"

    level: types.LoggingLevel = attrs.field(validator=_check_level)

    def perform(self, client: Client, ready: Ready) -> Awaitable[object]:
        return client.set_logging_level(self.level)


@attrs.frozen
class SubscribeResource(Operation):
    """``resources/subscribe``: ask for ``notifications/resources/updated`` about ``uri``."""

    name: ClassVar[str] = "subscribe_resource"
    method: ClassVar[str] = "resources/subscribe"

    uri: str = attrs.field(validator=_check_name)

    @property
    def target(self) -> str:
        return self.uri

    def perform(self, client: Client, ready: Ready) -> Awaitable[object]:
        return client.subscribe_resource(self.uri)


@attrs.frozen
class UnsubscribeResource(Operation):
    """``resources/unsubscribe``: stop the updates :class:`SubscribeResource` asked for."""

    name: ClassVar[str] = "unsubscribe_resource"
    method: ClassVar[str] = "resources/unsubscribe"

    uri: str = attrs.field(validator=_check_name)

    @property
    def target(self) -> str:
        return self.uri

    def perform(self, client: Client, ready: Ready) -> Awaitable[object]:
        return client.unsubscribe_resource(self.uri)


@attrs.frozen
class Probe(Operation):
    """A health check; the result is None.

    ``ping`` on handshake-era sessions, an uncached ``tools/list`` on 2026-07-28 ones (which
    have no ping). Any answer the server gives, a JSON-RPC error included, proves it is alive.
    """

    name: ClassVar[str] = "probe"
    method: ClassVar[str] = "ping"

    async def perform(self, client: Client, ready: Ready) -> object:
        if ready.modern:
            await client.list_tools(cache_mode="bypass")
        else:
            await client.session.send_ping()
        return None


OPERATIONS: Mapping[str, type[Operation]] = {
    op.name: op
    for op in (
        ListTools,
        ListResources,
        ListResourceTemplates,
        ListPrompts,
        CallTool,
        ReadResource,
        GetPrompt,
        Complete,
        SetLoggingLevel,
        SubscribeResource,
        UnsubscribeResource,
        Probe,
    )
}
"""Every operation a worker serves, by :attr:`Operation.name`."""
