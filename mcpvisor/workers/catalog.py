"""What a session offers, as one value: its listings, instructions and capabilities.

A worker builds a :class:`Catalog` when its session becomes ready and builds a new one after
every ``list_changed`` refetch; nothing ever mutates one. Readers (the handle's listings, a
gateway, an adapter) hold whichever catalog was current when they looked, so a listing is
never half old and half new.
"""

from __future__ import annotations

from typing import Literal, TypeAlias

import attrs
import mcp_types as types

CatalogPart: TypeAlias = Literal["tools", "resources", "resource_templates", "prompts"]
"""One list a catalog holds; a change names the parts that a ``list_changed`` refetched."""

CATALOG_PARTS: tuple[CatalogPart, ...] = ("tools", "resources", "resource_templates", "prompts")


@attrs.frozen
class Catalog:
    """One session's complete listings (every page fetched) and what the server said of itself.

    ``capabilities`` is None only for :data:`EMPTY_CATALOG`, the catalog of a server that has
    never been ready. A part the server does not offer (no such capability) is empty.
    """

    tools: tuple[types.Tool, ...] = ()
    resources: tuple[types.Resource, ...] = ()
    resource_templates: tuple[types.ResourceTemplate, ...] = ()
    prompts: tuple[types.Prompt, ...] = ()
    instructions: str | None = None
    capabilities: types.ServerCapabilities | None = None
    server_info: types.Implementation | None = None
    protocol_version: str | None = None
    _by_name: dict[str, types.Tool] = attrs.field(
        init=False,
        repr=False,
        eq=False,
        default=attrs.Factory(lambda self: _first_by_name(self.tools), takes_self=True),
    )
    """The tools by name, built once: the handle checks a tool's name on every call."""

    def part(self, name: CatalogPart) -> tuple[object, ...]:
        """The listing ``name``: ``catalog.part("tools") is catalog.tools``."""
        items: tuple[object, ...] = getattr(self, name)
        return items

    def tool(self, name: str) -> types.Tool | None:
        """The tool called ``name`` (the first listed, if a server repeats one), or None."""
        return self._by_name.get(name)


def _first_by_name(tools: tuple[types.Tool, ...]) -> dict[str, types.Tool]:
    """Each name's first tool: a server that repeats a name is read as its first listing."""
    return {tool.name: tool for tool in reversed(tools)}


EMPTY_CATALOG = Catalog()
"""The catalog of a server that has not been ready yet."""
