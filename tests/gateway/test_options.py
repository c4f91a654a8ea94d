"""The gateway's config section and the view it builds: pure functions, no servers."""

from __future__ import annotations

import json
from pathlib import Path

import mcp_types as types
import pytest
from hypothesis import given
from hypothesis import strategies as st

from mcpvisor.gateway.options import GatewayOptions, ToolFilter, parse_options, read_options
from mcpvisor.gateway.server import forwarded_meta, own_hop
from mcpvisor.gateway.view import EMPTY_VIEW, build_view, resolve_name, resource_server
from mcpvisor.specs import ConfigError
from mcpvisor.workers.catalog import Catalog


def tool(name: str) -> types.Tool:
    return types.Tool(name=name, input_schema={"type": "object"})


FILES = Catalog(
    tools=(tool("read"), tool("write"), tool("delete")),
    resources=(types.Resource(uri="file:///a", name="a"),),
    resource_templates=(types.ResourceTemplate(uri_template="file:///{path}", name="any"),),
    prompts=(types.Prompt(name="summarise"),),
)
SEARCH = Catalog(tools=(tool("read"), tool("query")), prompts=(types.Prompt(name="summarise"),))


def test_filters_allow_then_deny_with_patterns() -> None:
    f = ToolFilter(allow=("read*", "query"), deny=("read_secrets",))
    assert [n for n in ("read", "read_x", "read_secrets", "query", "write") if f.permits(n)] == [
        "read",
        "read_x",
        "query",
    ]
    assert ToolFilter().permits("anything")


def test_parse_options_and_every_problem_with_its_path() -> None:
    options = parse_options(
        {"namespace": False, "servers": {"files": {"tools": {"deny": ["delete"]}}}},
        ["files", "search"],
    )
    assert options.namespace == "never"
    assert not options.tool_filter("files").permits("delete")
    assert options.tool_filter("search").permits("delete")
    with pytest.raises(ConfigError) as caught:
        parse_options(
            {
                "namespace": "sometimes",
                "extra": 1,
                "servers": {
                    "fils": {},
                    "files": {"tools": {"allow": "read", "blocked": []}},
                },
            },
            ["files"],
        )
    paths = sorted(p.path for p in caught.value.problems)
    assert paths == [
        "mcpvisor.gateway.extra",
        "mcpvisor.gateway.namespace",
        "mcpvisor.gateway.servers.files.tools.allow",
        "mcpvisor.gateway.servers.files.tools.blocked",
        "mcpvisor.gateway.servers.fils",
    ]


def test_read_options_from_a_file(tmp_path: Path) -> None:
    path = tmp_path / "c.json"
    section = {"gateway": {"servers": {"files": {"tools": {"allow": ["read"]}}}}}
    path.write_text(json.dumps({"mcpServers": {}, "mcpvisor": section}))
    assert read_options(path, ["files"]).tool_filter("files").allow == ("read",)
    toml = tmp_path / "c.toml"
    toml.write_text('[mcpvisor.gateway]\nnamespace = "always"\n')
    assert read_options(toml, ["files"]).namespace == "always"


def test_namespacing_and_filters_shape_the_view() -> None:
    options = GatewayOptions(tools={"files": ToolFilter(deny=("delete",))})
    view = build_view([("files", FILES), ("search", SEARCH)], options, namespaced=True)
    assert [t.name for t in view.tools] == [
        "files__read",
        "files__write",
        "search__read",
        "search__query",
    ]
    assert [p.name for p in view.prompts] == ["files__summarise", "search__summarise"]
    servers = ["files", "search"]
    resolve = resolve_name
    assert resolve(view, "tools", "search__read", servers, options, namespaced=True) == (
        "search",
        "read",
    )
    assert resolve(view, "tools", "files__delete", servers, options, namespaced=True) is None
    assert resolve(view, "tools", "other__read", servers, options, namespaced=True) is None
    # A server that is down is not in the view, but its names still route (the call waits).
    down = build_view([("files", FILES)], options, namespaced=True)
    assert resolve(down, "tools", "search__query", servers, options, namespaced=True) == (
        "search",
        "query",
    )
    assert resource_server(view, "file:///a", servers) == "files"
    assert resource_server(view, "file:///b/c", servers) == "files"
    assert resource_server(view, "https://x", servers) is None


def test_without_namespace_the_first_server_wins_a_name() -> None:
    view = build_view([("files", FILES), ("search", SEARCH)], GatewayOptions(), namespaced=False)
    assert [t.name for t in view.tools] == ["read", "write", "delete", "query"]
    assert view.routes["tools", "read"] == ("files", "read")
    one = build_view([("files", FILES)], GatewayOptions(), namespaced=False)
    assert resolve_name(one, "tools", "later", ["files"], GatewayOptions(), namespaced=False) == (
        "files",
        "later",
    )


def test_changed_parts() -> None:
    options = GatewayOptions()
    both = build_view([("files", FILES), ("search", SEARCH)], options, namespaced=True)
    files = build_view([("files", FILES)], options, namespaced=True)
    assert both.changed_parts(files) == {"tools", "prompts"}
    assert files.changed_parts(EMPTY_VIEW) == {
        "tools",
        "prompts",
        "resources",
        "resource_templates",
    }
    assert both.changed_parts(both) == frozenset()


@given(st.lists(st.from_regex(r"[a-z][a-z_]{0,8}", fullmatch=True), unique=True, max_size=8))
def test_every_listed_tool_resolves_back_to_its_server(names: list[str]) -> None:
    catalog = Catalog(tools=tuple(tool(n) for n in names))
    options = GatewayOptions(tools={"a": ToolFilter(deny=("x*",))})
    view = build_view([("a", catalog), ("b", catalog)], options, namespaced=True)
    for listed in view.tools:
        server, name = resolve_name(
            view, "tools", listed.name, ["a", "b"], options, namespaced=True
        )  # type: ignore[misc]
        assert options.tool_filter(server).permits(name)
        assert listed.name == f"{server}__{name}"
    assert len(view.tools) == len(names) + sum(not n.startswith("x") for n in names)


def test_meta_crosses_one_hop_only() -> None:
    meta = {
        "progressToken": 3,
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "traceparent": "00-abc",
    }
    assert forwarded_meta(meta) == {"traceparent": "00-abc"}
    assert forwarded_meta({"progressToken": 1}) is None
    result = types.CallToolResult(
        content=[], _meta={"io.modelcontextprotocol/serverInfo": {"name": "x"}, "k": 1}
    )
    assert own_hop(result).meta == {"k": 1}
