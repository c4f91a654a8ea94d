"""TEMPORARY: the worker contract (BRIEF.md) spoken to the round-1 worker on main.

Until lane-worker is merged, the runtime builds contract values (operations, catalogs, hooks)
and this module turns them into what the old worker takes. Every function here becomes a
one-liner (or disappears) at the merge: ``Envelope(operation=..., context=...)``,
``ready.catalog``, ``WorkerHooks(on_catalog=..., on_lost=...)``.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable

import attrs

from mcpvisor.supervisor._shim_operations import Operation
from mcpvisor.workers import Envelope, Ready, Request, WorkerHooks
from mcpvisor.workers.catalog import Catalog, CatalogPart


def envelope(
    operation: Operation, deadline: float, context: contextvars.Context | None
) -> Envelope:
    """The envelope carrying ``operation`` (the old worker ignores ``context``)."""
    kind = type(operation)
    args = {
        field.alias: getattr(operation, field.name)
        for field in attrs.fields(kind)
        if field.name != "progress"
    }
    request = Request(operation.name, args, progress=getattr(operation, "progress", None))  # type: ignore[arg-type]
    return Envelope(request=request, deadline=deadline)


def operation_name(envelope: Envelope) -> str:
    """The operation an envelope carries, by name."""
    return str(envelope.request.op)


def catalog_of(ready: Ready) -> Catalog:
    """The catalog a ready worker reported."""
    return Catalog(
        tools=ready.tools,
        resources=ready.resources,
        resource_templates=ready.resource_templates,
        prompts=ready.prompts,
        instructions=ready.instructions,
        capabilities=ready.capabilities,
        server_info=ready.server_info,
        protocol_version=ready.protocol_version,
    )


def worker_hooks(
    current: Callable[[], Catalog],
    on_catalog: Callable[[Catalog, frozenset[CatalogPart]], None],
    on_lost: Callable[[str, str], None],
) -> WorkerHooks:
    """Hooks in the old worker's shape that report whole catalogs (``on_lost`` is unused)."""
    del on_lost
    return WorkerHooks(
        on_tools_changed=lambda tools: on_catalog(
            attrs.evolve(current(), tools=tools), frozenset({"tools"})
        ),
        on_resources_changed=lambda resources, templates: on_catalog(
            attrs.evolve(current(), resources=resources, resource_templates=templates),
            frozenset({"resources", "resource_templates"}),
        ),
        on_prompts_changed=lambda prompts: on_catalog(
            attrs.evolve(current(), prompts=prompts), frozenset({"prompts"})
        ),
    )
