"""A tiny handshake-era MCP server in raw JSON-RPC over stdio, with no ``mcp`` import.

It starts in about 20 ms, so scenarios that spawn dozens of servers measure the client side
rather than the SDK's import time. It answers ``server/discover`` with "method not found", as
most servers in the wild do, so clients fall back to the ``initialize`` handshake.

Tools: ``echo(text)`` and ``add(a, b)``.
"""

import json
import sys

TOOLS = [
    {"name": "echo", "inputSchema": {"type": "object", "properties": {"text": {"type": "string"}}}},
    {
        "name": "add",
        "inputSchema": {
            "type": "object",
            "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}},
        },
    },
]

INITIALIZE = {
    "protocolVersion": "2025-11-25",
    "capabilities": {"tools": {"listChanged": True}},
    "serverInfo": {"name": "bench-raw-server", "version": "1.0"},
}


def answer(message: dict[str, object]) -> dict[str, object] | None:
    """The response to one message, or None for a notification."""
    request_id = message.get("id")
    if request_id is None:
        return None
    method = message.get("method")
    params: dict[str, object] = message.get("params") or {}  # type: ignore[assignment]
    if method == "initialize":
        return {"jsonrpc": "2.0", "id": request_id, "result": INITIALIZE}
    if method == "ping":
        return {"jsonrpc": "2.0", "id": request_id, "result": {}}
    if method == "tools/list":
        return {"jsonrpc": "2.0", "id": request_id, "result": {"tools": TOOLS}}
    if method == "tools/call":
        args: dict[str, object] = params.get("arguments") or {}  # type: ignore[assignment]
        if params.get("name") == "add":
            text = str(int(args.get("a", 0)) + int(args.get("b", 0)))  # type: ignore[call-overload]
        else:
            text = str(args.get("text", ""))
        content = [{"type": "text", "text": text}]
        return {"jsonrpc": "2.0", "id": request_id, "result": {"content": content}}
    error = {"code": -32601, "message": f"method not found: {method}"}
    return {"jsonrpc": "2.0", "id": request_id, "error": error}


def main() -> None:
    for line in sys.stdin:
        if line.strip():
            reply = answer(json.loads(line))
            if reply is not None:
                sys.stdout.write(json.dumps(reply) + "\n")
                sys.stdout.flush()


if __name__ == "__main__":
    main()
