"""Complete listings, fetched past every page, bounded by item count and by time.

A server's paginator is not trusted to end: a listing stops at :data:`MAX_LIST_ITEMS` items,
at a cursor it has already followed, or when ``timeouts.request`` has passed, and logs a
warning naming the bound, so a cut listing is never silent. A page count is no bound at all:
a server with small pages and many tools is honest, one that repeats itself is not.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs
import trio
from mcp import Client
from mcp.shared.exceptions import MCPError
from mcp_types import CONNECTION_CLOSED

from mcpvisor.workers.catalog import Catalog, CatalogPart

MAX_LIST_ITEMS = 100_000
"""Items kept per listing; past this a listing is cut (with a warning)."""


async def list_all(
    client: Client, part: CatalogPart, *, time_limit: float, log: Any
) -> tuple[Any, ...]:
    """Every item of listing ``part``, bypassing the client's response cache (see module)."""
    items: list[Any] = []
    cursor: str | None = None
    followed: set[str] = set()
    bound: str | None = None
    with trio.move_on_after(time_limit) as timer:
        while True:
            page: Any
            if part == "tools":
                page = await client.list_tools(cursor=cursor, cache_mode="refresh")
                items += page.tools
            elif part == "resources":
                page = await client.list_resources(cursor=cursor, cache_mode="refresh")
                items += page.resources
            elif part == "resource_templates":
                page = await client.list_resource_templates(cursor=cursor, cache_mode="refresh")
                items += page.resource_templates
            else:
                page = await client.list_prompts(cursor=cursor, cache_mode="refresh")
                items += page.prompts
            cursor = page.next_cursor
            if cursor is None:
                break
            if len(items) >= MAX_LIST_ITEMS:
                bound = f"more than {MAX_LIST_ITEMS} items"
                break
            if cursor in followed:
                bound = "the server repeated a cursor"
                break
            followed.add(cursor)
    if timer.cancelled_caught:
        bound = f"not finished within {time_limit:g}s"
    if bound is not None:
        log.warning("server.list_cut", what=part, kept=min(len(items), MAX_LIST_ITEMS), bound=bound)
    return tuple(items[:MAX_LIST_ITEMS])


_PARTS_OF: dict[str, tuple[CatalogPart, ...]] = {
    "tools": ("tools",),
    "resources": ("resources", "resource_templates"),
    "prompts": ("prompts",),
}
"""What one list_changed kind refetches: templates change with resources."""


async def refetch(
    client: Client,
    catalog: Catalog,
    kind: str,
    *,
    time_limit: float,
    log: Any,
) -> tuple[Catalog, frozenset[CatalogPart]]:
    """``catalog`` with the parts of list_changed ``kind`` fetched anew, and those parts.

    Raises the SDK's ``MCPError`` when a page fails.
    """
    parts = _PARTS_OF[kind]
    fetched: dict[str, Any] = {}
    for part in parts:
        fetched[part] = await list_all(client, part, time_limit=time_limit, log=log)
    return attrs.evolve(catalog, **fetched), frozenset(parts)


async def first_catalog(
    client: Client, *, time_limit: float, log: Any, redact: Callable[[str], str]
) -> Catalog:
    """The catalog of a session that just became ready: every part its capabilities offer.

    A failing ``tools/list`` raises (the server is not usable); a failing resources or
    prompts listing is logged and left empty.
    """
    caps = client.server_capabilities
    tools: tuple[Any, ...] = ()
    if caps.tools is not None:
        tools = await list_all(client, "tools", time_limit=time_limit, log=log)
    optional: dict[str, tuple[Any, ...]] = {}
    wanted: list[CatalogPart] = []
    if caps.resources is not None:
        wanted += ["resources", "resource_templates"]
    if caps.prompts is not None:
        wanted.append("prompts")
    for part in wanted:
        try:
            optional[part] = await list_all(client, part, time_limit=time_limit, log=log)
        except MCPError as error:
            if error.code == CONNECTION_CLOSED:
                raise
            log.warning("server.list_failed", what=part, error=redact(error.error.message))
    return Catalog(
        tools=tools,
        instructions=client.instructions,
        capabilities=caps,
        server_info=client.server_info,
        protocol_version=client.protocol_version,
        **optional,
    )
