"""mcpvisor as the client under test for the MCP conformance suite's client scenarios.

The suite runs ``python mcpvisor_client.py <server-url>`` with ``MCP_CONFORMANCE_SCENARIO`` (and,
with ``--spec-version``, ``MCP_CONFORMANCE_PROTOCOL_VERSION``) set. This supervises the URL as
one ``HttpSpec`` with host handlers, lists its tools and calls each one, the way a host would:
the suite's server then checks what reached it. The elicitation handler accepts with the
schema's defaults filled in (SEP-1034), and every handler answers through mcpvisor's
``ClientHandlers``, in both protocol eras. A call that raises is reported on stderr as
``CALL-FAILED <tool>: ...`` (the pytest harness holds those to the expected-failures list) and
the exit status stays 0, so the suite's verdict is its own checks.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import mcp_types as types
import trio

import mcpvisor as mv


async def elicit(ctx: mv.HandlerContext, params: types.ElicitRequestParams) -> types.ElicitResult:
    schema = getattr(params, "requested_schema", None) or {}
    content: dict[str, Any] = {}
    for name, prop in (schema.get("properties") or {}).items():
        if "default" in prop:
            content[name] = prop["default"]
        elif prop.get("type") == "boolean":
            content[name] = True
    return types.ElicitResult(action="accept", content=content)


async def sample(
    ctx: mv.HandlerContext, params: types.CreateMessageRequestParams
) -> types.CreateMessageResult:
    return types.CreateMessageResult(
        role="assistant", content=types.TextContent(type="text", text="ok"), model="conformance"
    )


def _arguments(tool: types.Tool) -> dict[str, Any]:
    """Plausible arguments from the input schema: numbers 1, strings "x", booleans true."""
    out: dict[str, Any] = {}
    props = (tool.input_schema or {}).get("properties") or {}
    for name, prop in props.items():
        kind = prop.get("type") if isinstance(prop, dict) else None
        out[name] = {"number": 1, "integer": 1, "boolean": True, "string": "x"}.get(kind, "x")
    return out


async def main(url: str) -> int:
    version = os.environ.get("MCP_CONFORMANCE_PROTOCOL_VERSION", "")
    # "auto" discovers the 2026-07-28 server (a pinned era would skip server/discover and see
    # no capabilities); a dated 2025 version takes the initialize handshake.
    protocol = "auto" if not version or version.startswith("2026") else "legacy"
    handlers = mv.ClientHandlers(
        sampling=sample, elicitation=elicit, roots=["file:///conformance"], timeout=20
    )
    spec = mv.SupervisorSpec(
        [
            mv.HttpSpec(
                name="scenario",
                url=url,
                protocol=protocol,
                restart=mv.RestartPolicy(restart="temporary"),
                timeouts=mv.Timeouts(connect=20, initialize=20, request=20),
            )
        ],
        handlers=handlers,
    )
    async with mv.open_supervisor(spec) as client:
        for entry in await client.list_tools():
            try:
                result = await client.call_tool("scenario", entry.name, _arguments(entry.tool))
                print(f"{entry.name}: is_error={result.is_error}", flush=True)
            except Exception as error:  # the suite judges; report and go on to the next tool
                print(f"CALL-FAILED {entry.name}: {type(error).__name__}: {error}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(trio.run(main, sys.argv[-1]))
