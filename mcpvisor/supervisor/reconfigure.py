"""Reloading a running supervisor: what a new spec changes, decided before anything is touched.

:func:`plan_reconfigure` is a pure function of the running spec and the new one. It returns a
:class:`ReconfigureReport` that sorts every server into added, removed, restarted (a field its
session depends on changed), updated (only supervision fields changed: applied in place) and
unchanged, and lists the groups whose strategy changed. :func:`core_input` turns the report
into the lifecycle core's :class:`~mcpvisor.supervisor.lifecycle.Reconfigure`, which the
runtime applies in one step. Nothing here does I/O; reports name fields, never their values,
so they are safe to log even when an ``env`` value or a header (a secret) changed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from types import MappingProxyType
from typing import Any

import attrs

from mcpvisor.specs import ServerSpec, SupervisorSpec
from mcpvisor.specs.errors import ConfigError, Problem, UsageError
from mcpvisor.specs.handlers import ClientHandlers
from mcpvisor.specs.policy import Strategy
from mcpvisor.supervisor._lifecycle_model import LifecycleEvent, Member, Reconfigure
from mcpvisor.supervisor.answering import effective_handlers, handlers_differ

IN_PLACE_FIELDS: frozenset[str] = frozenset(
    {"required", "group", "start", "max_isolated", "restart", "timeouts.request", "handlers"}
)
"""Spec fields that only the supervisor reads, so a change to them applies without a restart.

``restart`` (the whole :class:`RestartPolicy`) governs the next failure; ``timeouts.request``
the next request; ``start`` only matters when a server is added; ``handlers`` (the server's
handlers over the supervisor's) answer the next question, unless what they advertise
changed (``handlers.capabilities``), which only a new session can announce. Every other
field (command, args, env, cwd, url, headers, protocol, the other timeouts,
``idle_shutdown``, ``max_concurrency``, ``max_message_bytes``, the in-process server object,
the transport) shapes the session, so a change to any of them restarts the server.
"""

RELOAD_SERVER = "*"
"""The ``server`` of a ``"reload"`` :class:`LifecycleEvent`: no server can be named ``*``."""


def _names(value: Iterable[str]) -> tuple[str, ...]:
    return tuple(value)


def _frozen(value: Mapping[str, Any]) -> Mapping[str, Any]:
    return MappingProxyType(dict(value))


@attrs.frozen
class ReconfigureReport:
    """What a reconfiguration changed (or, from :func:`plan_reconfigure`, will change).

    - ``added``, ``restarted``, ``updated``, ``unchanged``: server names in the new declared
      order; ``removed`` in the old one. ``restarted`` servers start again under their new
      spec with a fresh restart budget (a stopped one stays stopped and uses it on its next
      start); ``updated`` ones keep running and their in-flight requests, with the new
      supervision fields (see :data:`IN_PLACE_FIELDS`) in effect from now on.
    - ``fields``: for each restarted or updated server, the names of the fields that changed
      (``"env"``, ``"restart.max_restarts"``, ``"timeouts.connect"``...), never the values.
    - ``groups``: each group added, removed or given a new strategy, as ``(old, new)`` with
      None for absent. A strategy applies to a group's next failure; nobody restarts for it.
    - ``reordered``: the declared order of the servers that stay changed (it decides start
      and stop order and which members ``rest_for_one`` takes down).
    """

    added: tuple[str, ...] = attrs.field(converter=_names)
    removed: tuple[str, ...] = attrs.field(converter=_names)
    restarted: tuple[str, ...] = attrs.field(converter=_names)
    updated: tuple[str, ...] = attrs.field(converter=_names)
    unchanged: tuple[str, ...] = attrs.field(converter=_names)
    fields: Mapping[str, tuple[str, ...]] = attrs.field(converter=_frozen, hash=False)
    groups: Mapping[str, tuple[Strategy | None, Strategy | None]] = attrs.field(
        converter=_frozen, hash=False
    )
    reordered: bool = False

    @property
    def changed(self) -> bool:
        """Whether the reconfiguration changes anything at all."""
        return (
            bool(self.added or self.removed or self.restarted or self.updated or self.groups)
            or self.reordered
        )

    def summary(self) -> str:
        """One line for logs and the live view, e.g. ``added c; removed b; restarted a (args)``."""
        parts: list[str] = []
        for verb, names in (("added", self.added), ("removed", self.removed)):
            if names:
                parts.append(f"{verb} {', '.join(names)}")
        for verb, names in (("restarted", self.restarted), ("updated", self.updated)):
            if names:
                each = (f"{n} ({', '.join(self.fields.get(n, ()))})" for n in names)
                parts.append(f"{verb} {', '.join(each)}")
        for group, (old, new) in self.groups.items():
            parts.append(f"group {group}: {old or '-'} -> {new or '-'}")
        if self.reordered:
            parts.append("reordered")
        return "; ".join(parts) or "no changes"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict of the report, for ``--json`` output and APIs."""
        return {
            "added": list(self.added),
            "removed": list(self.removed),
            "restarted": list(self.restarted),
            "updated": list(self.updated),
            "unchanged": list(self.unchanged),
            "fields": {n: list(f) for n, f in self.fields.items()},
            "groups": {g: list(change) for g, change in self.groups.items()},
            "reordered": self.reordered,
        }


def changed_fields(old: ServerSpec, new: ServerSpec) -> tuple[str, ...]:
    """The names of the fields that differ between two specs of one server, in field order.

    ``restart`` and ``timeouts`` are compared field by field (``"timeouts.connect"``); an
    in-process ``server`` differs unless it is the same object; a different spec type is
    ``"transport"``.
    """
    if type(old) is not type(new):
        return ("transport",)
    out: list[str] = []
    for field in attrs.fields(type(old)):
        a, b = getattr(old, field.name), getattr(new, field.name)
        if field.name == "handlers":
            continue  # compared as the effective handlers: see handlers_change
        if field.name == "server":
            if a is not b:
                out.append("server")
        elif field.name in ("restart", "timeouts"):
            out += [
                f"{field.name}.{sub.name}"
                for sub in attrs.fields(type(a))
                if getattr(a, sub.name) != getattr(b, sub.name)
            ]
        elif isinstance(a, Mapping) and isinstance(b, Mapping):
            if dict(a) != dict(b):
                out.append(field.name)
        elif a != b:
            out.append(field.name)
    return tuple(out)


def handlers_change(old: ClientHandlers, new: ClientHandlers) -> tuple[str, ...]:
    """How a server's effective handlers changed: ``"handlers"`` if any field did (a handler
    is compared by identity), with ``"handlers.capabilities"`` if what they advertise did too,
    which only a new session can announce."""
    if not handlers_differ(old, new):
        return ()
    if old.advertised != new.advertised:
        return ("handlers", "handlers.capabilities")
    return ("handlers",)


def needs_restart(fields: Iterable[str]) -> bool:
    """Whether a change to ``fields`` needs a new session (see :data:`IN_PLACE_FIELDS`)."""
    return any(f not in IN_PLACE_FIELDS and f.split(".")[0] != "restart" for f in fields)


def validate(new: object) -> SupervisorSpec:
    """``new`` if it is a whole, valid :class:`SupervisorSpec`; else a typed error, first.

    The spec validates itself at construction; this checks again what a reload relies on
    (unique names, declared groups), so a spec built around the validators is refused too.
    """
    if not isinstance(new, SupervisorSpec):
        raise UsageError("spec", f"must be a SupervisorSpec, not {type(new).__name__}")
    problems: list[Problem] = []
    seen: set[str] = set()
    for spec in new.servers:
        if spec.name in seen:
            problems.append(Problem(f"servers.{spec.name}", "duplicate server name"))
        seen.add(spec.name)
        if spec.group is not None and spec.group not in new.groups:
            problems.append(Problem(f"servers.{spec.name}.group", f"unknown group {spec.group!r}"))
    if problems:
        raise ConfigError(problems)
    return new


def plan_reconfigure(old: SupervisorSpec, new: SupervisorSpec) -> ReconfigureReport:
    """Sort every server of ``old`` and ``new`` by what a reconfiguration does to it.

    Pure. Raises :class:`ConfigError` (or :class:`UsageError` for a non-spec) if ``new``
    cannot be applied, before anything is decided.
    """
    validate(new)
    before = {s.name: s for s in old.servers}
    after = {s.name: s for s in new.servers}
    fields: dict[str, tuple[str, ...]] = {}
    restarted: list[str] = []
    updated: list[str] = []
    unchanged: list[str] = []
    for name, spec in after.items():
        if name not in before:
            continue
        diff = changed_fields(before[name], spec) + handlers_change(
            effective_handlers(before[name], old), effective_handlers(spec, new)
        )
        if not diff:
            unchanged.append(name)
            continue
        fields[name] = diff
        (restarted if needs_restart(diff) else updated).append(name)
    groups: dict[str, tuple[Strategy | None, Strategy | None]] = {}
    for group in (*old.groups, *(g for g in new.groups if g not in old.groups)):
        a, b = old.groups.get(group), new.groups.get(group)
        if a != b:
            groups[group] = (a, b)
    kept_before = [n for n in before if n in after]
    kept_after = [n for n in after if n in before]
    return ReconfigureReport(
        added=[n for n in after if n not in before],
        removed=[n for n in before if n not in after],
        restarted=restarted,
        updated=updated,
        unchanged=unchanged,
        fields=fields,
        groups=groups,
        reordered=kept_before != kept_after,
    )


def core_input(
    report: ReconfigureReport,
    new: SupervisorSpec,
    extra: Sequence[Member],
    at: float,
) -> Reconfigure:
    """The core's input for ``report``: ``new``'s members in order, then ``extra`` ones.

    ``extra`` are members the runtime supervises beyond the configured servers (isolated
    sessions), which a reconfiguration keeps as they are.
    """
    members = [Member.from_spec(s) for s in new.servers]
    return Reconfigure([*members, *extra], new.groups, report.restarted, at)


def reload_event(
    at: float,
    *,
    report: ReconfigureReport | None = None,
    error: BaseException | None = None,
) -> LifecycleEvent:
    """The ``"reload"`` event: reason ``applied`` with the report's summary, or ``rejected``.

    A rejection's cause is the error on one line (a ConfigError's problems joined by ``; ``),
    so an event log shows it whole.
    """
    if report is not None:
        return LifecycleEvent(
            RELOAD_SERVER, None, None, "applied", at, cause=report.summary(), kind="reload"
        )
    if isinstance(error, ConfigError):
        text = "; ".join(str(p) for p in error.problems)
    else:
        text = " ".join(str(error).split())
    return LifecycleEvent(RELOAD_SERVER, None, None, "rejected", at, cause=text, kind="reload")
