"""What the gateway reads from and sends through the supervisor's handle, in one place.

The gateway uses only the handle's public surface. Where the handle of this version has
nothing yet (one catalog value per server, ``meta=`` on ``call_tool``), the fallbacks below
say so; they go away once the handle has them.
"""

from __future__ import annotations

import inspect
from collections import defaultdict
from collections.abc import Mapping
from typing import Any

import mcp_types as types

from mcpvisor.supervisor import ServerState, SupervisorClient
from mcpvisor.workers import ProgressCallback, Request
from mcpvisor.workers.catalog import Catalog


def serving(client: SupervisorClient) -> list[str]:
    """The configured servers (no isolated sessions) whose listings are offered right now.

    ACTIVE ones, and ones stopped by idle shutdown, whose next call wakes them.
    """
    out = []
    for name, status in client.status().servers.items():
        if status.isolated_of is not None:
            continue
        if status.state is ServerState.ACTIVE or (
            status.state is ServerState.STOPPED and status.wakeable
        ):
            out.append(name)
    return out


def configured(client: SupervisorClient) -> list[str]:
    """Every configured server, in declared order (no isolated sessions)."""
    return [n for n, s in client.status().servers.items() if s.isolated_of is None]


async def catalogs(client: SupervisorClient) -> list[tuple[str, Catalog]]:
    """``(server, Catalog)`` for every serving server, from the handle's caches (no round trip)."""
    names = serving(client)
    catalog_of = getattr(client, "catalog", None)
    if catalog_of is not None:
        return [(name, catalog_of(name)) for name in names]
    # This handle has no catalog(): rebuild one per server from the aggregated listings.
    tools: dict[str, list[types.Tool]] = defaultdict(list)
    for entry in await client.list_tools():
        tools[entry.server].append(entry.tool)
    resources: dict[str, list[types.Resource]] = defaultdict(list)
    for server, resource in await client.list_resources():
        resources[server].append(resource)
    prompts: dict[str, list[types.Prompt]] = defaultdict(list)
    for server, prompt in await client.list_prompts():
        prompts[server].append(prompt)
    return [
        (
            name,
            Catalog(
                tools=tuple(tools[name]),
                resources=tuple(resources[name]),
                prompts=tuple(prompts[name]),
            ),
        )
        for name in names
    ]


def _takes_meta(client: SupervisorClient) -> bool:
    return "meta" in inspect.signature(client.call_tool).parameters


async def call_tool(
    client: SupervisorClient,
    server: str,
    tool: str,
    arguments: Mapping[str, Any] | None,
    *,
    meta: Mapping[str, Any] | None,
    progress: ProgressCallback | None,
) -> types.CallToolResult:
    """Call ``tool`` on ``server`` with the caller's ``_meta`` and a progress relay."""
    if _takes_meta(client):
        result: types.CallToolResult = await client.call_tool(  # type: ignore[call-arg]
            server, tool, dict(arguments or {}), meta=dict(meta or {}) or None, progress=progress
        )
        return result
    # This handle's call_tool has no meta=: the same request, built as the handle builds it.
    args: dict[str, Any] = {"name": tool, "arguments": dict(arguments or {})}
    if meta:
        args["meta"] = dict(meta)
    request = Request(op="call_tool", args=args, progress=progress)
    result = await client._request(server, request, None)
    return result
