"""mcpvisor's own target for the MCP conformance suite's server scenarios.

Written for mcpvisor from what the suite's scenarios call (tool, resource and prompt names,
content kinds), on the SDK's low-level ``Server``; it is not the Python SDK's fixture, which
is not published to a registry. Over stdio by default (the gateway spawns it);
``--http`` serves streamable HTTP on 127.0.0.1 (port 0: ephemeral) and prints
``PORT <n>`` once listening, for the direct baseline run.

Not implemented, so failed directly and through the gateway alike: the scenarios that need
the server to ask its client (sampling, elicitation, the 2026 input-required flow) and the
suite's SSE polling / multiple-stream checks that depend on an event store.
"""

from __future__ import annotations

import argparse
import base64
import sys
from typing import Any

import mcp_types as types
import trio
from mcp.server.context import ServerRequestContext
from mcp.server.lowlevel import NotificationOptions, Server
from mcp.server.subscriptions import InMemorySubscriptionBus, ListenHandler
from mcp.shared.exceptions import MCPError

# A 1x1 red PNG and a 4-sample silent WAV, built here rather than read from files.
PNG = base64.b64encode(
    bytes.fromhex(
        "89504e470d0a1a0a0000000d4948445200000001000000010802000000907753de"
        "0000000c4944415408d763f8cfc000000301010018dd8db00000000049454e44ae426082"
    )
).decode()
WAV = base64.b64encode(
    b"RIFF"
    + (44).to_bytes(4, "little")
    + b"WAVEfmt "
    + (16).to_bytes(4, "little")
    + (1).to_bytes(2, "little")
    + (1).to_bytes(2, "little")
    + (8000).to_bytes(4, "little")
    + (16000).to_bytes(4, "little")
    + (2).to_bytes(2, "little")
    + (16).to_bytes(2, "little")
    + b"data"
    + (8).to_bytes(4, "little")
    + bytes(8)
).decode()

EMPTY: dict[str, Any] = {"type": "object", "properties": {}}
SCHEMA_2020_12: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "$defs": {
        "address": {
            "$anchor": "address",
            "type": "object",
            "properties": {"street": {"type": "string"}, "city": {"type": "string"}},
        }
    },
    "properties": {"name": {"type": "string"}, "address": {"$ref": "#/$defs/address"}},
    "allOf": [{"required": ["name"]}],
    "if": {"properties": {"name": {"const": "x"}}},
    "then": {"required": ["address"]},
    "else": {},
    "additionalProperties": False,
}

TOOLS = [
    types.Tool(name="test_simple_text", description="Returns text", input_schema=EMPTY),
    types.Tool(name="test_image_content", description="Returns an image", input_schema=EMPTY),
    types.Tool(name="test_audio_content", description="Returns audio", input_schema=EMPTY),
    types.Tool(name="test_embedded_resource", description="Embeds a resource", input_schema=EMPTY),
    types.Tool(name="test_multiple_content_types", description="Mixed", input_schema=EMPTY),
    types.Tool(name="test_tool_with_logging", description="Logs three times", input_schema=EMPTY),
    types.Tool(name="test_tool_with_progress", description="Reports progress", input_schema=EMPTY),
    types.Tool(name="test_error_handling", description="Always fails", input_schema=EMPTY),
    types.Tool(name="json_schema_2020_12_tool", description="2020-12", input_schema=SCHEMA_2020_12),
]


def _embedded(uri: str) -> types.EmbeddedResource:
    return types.EmbeddedResource(
        resource=types.TextResourceContents(uri=uri, mime_type="text/plain", text=f"Text of {uri}")
    )


async def list_tools(ctx: ServerRequestContext[Any], params: Any) -> types.ListToolsResult:
    return types.ListToolsResult(tools=TOOLS)


async def call_tool(
    ctx: ServerRequestContext[Any], params: types.CallToolRequestParams
) -> types.CallToolResult:
    image = types.ImageContent(data=PNG, mime_type="image/png")
    match params.name:
        case "test_simple_text":
            content: list[Any] = [types.TextContent(text="This is a simple text response.")]
        case "test_image_content":
            content = [image]
        case "test_audio_content":
            content = [types.AudioContent(data=WAV, mime_type="audio/wav")]
        case "test_embedded_resource":
            content = [_embedded("test://embedded-resource")]
        case "test_multiple_content_types":
            content = [
                types.TextContent(text="Text, an image and a resource."),
                image,
                _embedded("test://mixed-content-resource"),
            ]
        case "test_tool_with_logging":
            for step in ("starting", "working", "done"):
                await ctx.session.send_log_message(
                    "info", f"tool {step}", "fixture", ctx.request_id
                )
                await trio.sleep(0.01)
            content = [types.TextContent(text="logged")]
        case "test_tool_with_progress":
            for value in (0, 50, 100):
                await ctx.session.report_progress(value, 100, f"{value}%")
                await trio.sleep(0.01)
            content = [types.TextContent(text="progressed")]
        case "test_error_handling":
            return types.CallToolResult(
                content=[types.TextContent(text="This tool always fails.")], is_error=True
            )
        case "json_schema_2020_12_tool":
            content = [types.TextContent(text="ok")]
        case _:
            raise MCPError(types.INVALID_PARAMS, f"Unknown tool: {params.name}")
    return types.CallToolResult(content=content)


RESOURCES = [
    types.Resource(uri="test://static-text", name="static-text", mime_type="text/plain"),
    types.Resource(uri="test://static-binary", name="static-binary", mime_type="image/png"),
    types.Resource(uri="test://watched-resource", name="watched", mime_type="text/plain"),
]
TEMPLATES = [
    types.ResourceTemplate(
        uri_template="test://template/{id}/data", name="template", mime_type="text/plain"
    )
]


async def list_resources(ctx: ServerRequestContext[Any], params: Any) -> types.ListResourcesResult:
    return types.ListResourcesResult(resources=RESOURCES)


async def list_templates(
    ctx: ServerRequestContext[Any], params: Any
) -> types.ListResourceTemplatesResult:
    return types.ListResourceTemplatesResult(resource_templates=TEMPLATES)


async def read_resource(
    ctx: ServerRequestContext[Any], params: types.ReadResourceRequestParams
) -> types.ReadResourceResult:
    uri = str(params.uri)
    contents: list[Any]
    if uri == "test://static-binary":
        contents = [types.BlobResourceContents(uri=uri, mime_type="image/png", blob=PNG)]
    elif uri in ("test://static-text", "test://watched-resource", "test://example-resource"):
        contents = [types.TextResourceContents(uri=uri, mime_type="text/plain", text=f"Text {uri}")]
    elif uri.startswith("test://template/") and uri.endswith("/data"):
        ident = uri.removeprefix("test://template/").removesuffix("/data")
        contents = [types.TextResourceContents(uri=uri, mime_type="text/plain", text=f"id {ident}")]
    else:
        raise MCPError(types.INVALID_PARAMS, f"Resource not found: {uri}", {"uri": uri})
    return types.ReadResourceResult(contents=contents)


async def subscribe(ctx: ServerRequestContext[Any], params: Any) -> types.EmptyResult:
    return types.EmptyResult()


PROMPTS = [
    types.Prompt(name="test_simple_prompt", description="No arguments"),
    types.Prompt(
        name="test_prompt_with_arguments",
        description="Two arguments",
        arguments=[
            types.PromptArgument(name="arg1", required=True),
            types.PromptArgument(name="arg2", required=True),
        ],
    ),
    types.Prompt(
        name="test_prompt_with_embedded_resource",
        description="Embeds a resource",
        arguments=[types.PromptArgument(name="resourceUri", required=True)],
    ),
    types.Prompt(name="test_prompt_with_image", description="An image"),
]


async def list_prompts(ctx: ServerRequestContext[Any], params: Any) -> types.ListPromptsResult:
    return types.ListPromptsResult(prompts=PROMPTS)


async def get_prompt(
    ctx: ServerRequestContext[Any], params: types.GetPromptRequestParams
) -> types.GetPromptResult:
    args = params.arguments or {}
    match params.name:
        case "test_simple_prompt":
            content: Any = types.TextContent(text="A simple prompt.")
        case "test_prompt_with_arguments":
            content = types.TextContent(text=f"arg1={args.get('arg1')} arg2={args.get('arg2')}")
        case "test_prompt_with_embedded_resource":
            content = _embedded(args.get("resourceUri", "test://example-resource"))
        case "test_prompt_with_image":
            content = types.ImageContent(data=PNG, mime_type="image/png")
        case _:
            raise MCPError(types.INVALID_PARAMS, f"Unknown prompt: {params.name}")
    return types.GetPromptResult(messages=[types.PromptMessage(role="user", content=content)])


async def complete(
    ctx: ServerRequestContext[Any], params: types.CompleteRequestParams
) -> types.CompleteResult:
    values = [v for v in ("test", "testing", "tested") if v.startswith(params.argument.value)]
    return types.CompleteResult(completion=types.Completion(values=values, total=len(values)))


async def set_level(ctx: ServerRequestContext[Any], params: Any) -> types.EmptyResult:
    return types.EmptyResult()


def build() -> Server[Any]:
    server: Server[Any] = Server(
        "mcpvisor-conformance-fixture",
        version="1.0.0",
        on_list_tools=list_tools,
        on_call_tool=call_tool,
        on_list_resources=list_resources,
        on_list_resource_templates=list_templates,
        on_read_resource=read_resource,
        on_subscribe_resource=subscribe,
        on_unsubscribe_resource=subscribe,
        on_list_prompts=list_prompts,
        on_get_prompt=get_prompt,
        on_completion=complete,
        on_subscriptions_listen=ListenHandler(InMemorySubscriptionBus()),
    )
    server.add_request_handler("logging/setLevel", types.SetLevelRequestParams, set_level)
    return server


async def serve_http(server: Server[Any], port: int) -> None:
    from hypercorn.config import Config
    from hypercorn.trio import serve

    config = Config()
    config.bind = [f"127.0.0.1:{port}"]
    config.accesslog = config.errorlog = None
    async with trio.open_nursery() as nursery:
        binds = await nursery.start(serve, server.streamable_http_app(), config)
        print(f"PORT {binds[0].rsplit(':', 1)[1]}", flush=True)


async def serve_stdio(server: Server[Any]) -> None:
    from mcp.server.stdio import stdio_server

    options = server.create_initialization_options(NotificationOptions())
    async with stdio_server() as (read, write):
        await server.run(read, write, options)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--http", action="store_true")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    server = build()
    if args.http:
        trio.run(serve_http, server, args.port)
    else:
        trio.run(serve_stdio, server)
    sys.exit(0)


if __name__ == "__main__":
    main()
