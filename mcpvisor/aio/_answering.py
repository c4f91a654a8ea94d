"""The host's answers to servers' questions, run on the host's asyncio loop.

An asyncio host writes its sampling, elicitation and roots handlers as asyncio coroutine
functions that use its own loop's clients (an ``AsyncOpenAI``, a websocket to the user). The
supervisor asks them from its Trio run, so each is wrapped here in a Trio-side function that
awaits it on the host loop through the portal; a ``logging`` callback is called on the host
loop too. Timeouts and cancellation stay the supervisor's: cancelling the Trio side cancels
the asyncio task.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import attrs

from mcpvisor.specs.handlers import ClientHandlers, ServerLog
from mcpvisor.workers.callbacks import call_awaited

if TYPE_CHECKING:
    from mcpvisor.aio._portal import TrioPortal
    from mcpvisor.specs import ServerSpec, SupervisorSpec


def on_host(handlers: ClientHandlers | None, portal: TrioPortal) -> ClientHandlers | None:
    """``handlers`` with every callable run on the host loop (static roots stay as they are)."""
    return None if handlers is None else _wrapped(handlers, portal)


def _wrapped(handlers: ClientHandlers, portal: TrioPortal) -> ClientHandlers:
    to_host = portal.to_host
    changes: dict[str, Any] = {}
    for field in ("sampling", "elicitation"):
        fn = getattr(handlers, field)
        if fn is not None:

            async def ask(ctx: Any, params: Any, fn: Any = fn) -> Any:
                return await to_host(call_awaited, fn, ctx, params)

            changes[field] = ask
    if callable(handlers.roots):
        changes["roots"] = roots_on_host(handlers.roots, portal)
    on_log = handlers.logging
    if on_log is not None:

        def log(record: ServerLog) -> None:
            portal.to_host_soon(on_log, record)

        changes["logging"] = log
    return attrs.evolve(handlers, **changes) if changes else handlers


def roots_on_host(roots: Any, portal: TrioPortal) -> Any:
    """``roots`` as given if static; a roots handler wrapped to run on the host loop."""
    if not callable(roots):
        return roots
    to_host = portal.to_host

    async def list_roots(ctx: Any) -> Any:
        return await to_host(call_awaited, roots, ctx)

    return list_roots


def server_on_host(spec: ServerSpec, portal: TrioPortal) -> ServerSpec:
    """``spec`` with its own handlers, if any, run on the host loop."""
    handlers = on_host(spec.handlers, portal)
    return spec if handlers is spec.handlers else attrs.evolve(spec, handlers=handlers)


def supervisor_on_host(spec: SupervisorSpec, portal: TrioPortal) -> SupervisorSpec:
    """``spec`` with the supervisor's and every server's handlers run on the host loop."""
    servers = [server_on_host(server, portal) for server in spec.servers]
    handlers = _wrapped(spec.handlers, portal)
    if handlers is spec.handlers and all(
        a is b for a, b in zip(servers, spec.servers, strict=True)
    ):
        return spec
    return attrs.evolve(spec, servers=servers, handlers=handlers)
