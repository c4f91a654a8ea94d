"""What the gateway's clients see: the serving servers' catalogs, filtered and namespaced.

A :class:`View` is one immutable value built from the catalogs of the servers that are
serving at one moment, so a listing is never half old and half new, and comparing two views
tells which ``list_changed`` notifications are due. Pure: no I/O, no supervisor.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from functools import cache
from typing import Any

import attrs
import mcp_types as types

from mcpvisor.gateway.options import GatewayOptions
from mcpvisor.specs import qualify, split_qualified
from mcpvisor.workers.catalog import Catalog, CatalogPart


@attrs.frozen
class View:
    """The listings the gateway serves and where each name leads.

    ``tools`` and ``prompts`` carry gateway names (``server__name`` when namespaced);
    ``routes`` maps ``("tools"|"prompts", gateway name)`` to ``(server, name)``. Resources and
    templates keep their URIs, which are not namespaced: ``resource_servers`` maps a listed URI
    to its server and ``template_servers`` pairs each template with its server.
    """

    tools: tuple[types.Tool, ...] = ()
    prompts: tuple[types.Prompt, ...] = ()
    resources: tuple[types.Resource, ...] = ()
    resource_templates: tuple[types.ResourceTemplate, ...] = ()
    routes: Mapping[tuple[str, str], tuple[str, str]] = attrs.field(factory=dict)
    resource_servers: Mapping[str, str] = attrs.field(factory=dict)
    template_servers: tuple[tuple[str, str], ...] = ()

    def part(self, name: CatalogPart) -> tuple[Any, ...]:
        """The listing ``name`` as served."""
        items: tuple[Any, ...] = getattr(self, name)
        return items

    def changed_parts(self, other: View) -> frozenset[CatalogPart]:
        """The listings that differ between this view and ``other``."""
        parts: tuple[CatalogPart, ...] = ("tools", "resources", "resource_templates", "prompts")
        return frozenset(p for p in parts if self.part(p) != other.part(p))


EMPTY_VIEW = View()


def build_view(
    catalogs: Sequence[tuple[str, Catalog]], options: GatewayOptions, *, namespaced: bool
) -> View:
    """The view of ``catalogs`` (server name, catalog), in server order.

    Without namespacing, the first server offering a name wins it and later ones are hidden
    (so a call can never reach a tool other than the one listed).
    """
    tools: list[types.Tool] = []
    prompts: list[types.Prompt] = []
    resources: list[types.Resource] = []
    templates: list[types.ResourceTemplate] = []
    routes: dict[tuple[str, str], tuple[str, str]] = {}
    resource_servers: dict[str, str] = {}
    template_servers: list[tuple[str, str]] = []
    for server, catalog in catalogs:
        permits = options.tool_filter(server).permits
        for tool in catalog.tools:
            if not permits(tool.name):
                continue
            name = qualify(server, tool.name) if namespaced else tool.name
            if ("tools", name) in routes:
                continue
            routes["tools", name] = (server, tool.name)
            tools.append(tool if name == tool.name else tool.model_copy(update={"name": name}))
        for prompt in catalog.prompts:
            name = qualify(server, prompt.name) if namespaced else prompt.name
            if ("prompts", name) in routes:
                continue
            routes["prompts", name] = (server, prompt.name)
            prompts.append(
                prompt if name == prompt.name else prompt.model_copy(update={"name": name})
            )
        for resource in catalog.resources:
            uri = str(resource.uri)
            if uri not in resource_servers:
                resource_servers[uri] = server
                resources.append(resource)
        for template in catalog.resource_templates:
            if all(t != template.uri_template for _, t in template_servers):
                template_servers.append((server, template.uri_template))
                templates.append(template)
    return View(
        tools=tuple(tools),
        prompts=tuple(prompts),
        resources=tuple(resources),
        resource_templates=tuple(templates),
        routes=routes,
        resource_servers=resource_servers,
        template_servers=tuple(template_servers),
    )


def resolve_name(
    view: View,
    kind: str,
    name: str,
    servers: Sequence[str],
    options: GatewayOptions,
    *,
    namespaced: bool,
) -> tuple[str, str] | None:
    """``(server, name)`` for gateway name ``name`` of ``kind`` (``tools``/``prompts``), or None.

    A name of a server that is down right now (so not in ``view``) still resolves when
    namespaced, or when the gateway fronts one server: a call waits for the restart within its
    deadline instead of failing as unknown. A filtered-out tool never resolves.
    """
    route = view.routes.get((kind, name))
    if route is None:
        if namespaced:
            route = split_qualified(name)
            if route is None or route[0] not in servers:
                return None
        elif len(servers) == 1:
            route = (servers[0], name)
        else:
            return None
    if kind == "tools" and not options.tool_filter(route[0]).permits(route[1]):
        return None
    return route


def resource_server(view: View, uri: str, servers: Sequence[str]) -> str | None:
    """The server to read ``uri`` from: its listed resource, else a matching template.

    A lone server gets every URI (it may serve resources it does not list).
    """
    server = view.resource_servers.get(uri)
    if server is not None:
        return server
    for owner, template in view.template_servers:
        if _template_regex(template).fullmatch(uri):
            return owner
    return servers[0] if len(servers) == 1 else None


def template_server(view: View, uri_template: str) -> str | None:
    """The server offering resource template ``uri_template`` (for completions)."""
    return next((s for s, t in view.template_servers if t == uri_template), None)


@cache
def _template_regex(template: str) -> re.Pattern[str]:
    """An RFC 6570 template as a regex: each ``{expr}`` matches one or more characters."""
    parts = re.split(r"\{[^}]*\}", template)
    return re.compile(".+?".join(re.escape(p) for p in parts), re.DOTALL)
