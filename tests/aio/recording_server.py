"""A raw JSON-RPC stdio MCP server (no ``mcp`` import, starts fast) that records what it got.

``python recording_server.py RECORD_FILE [--linger] [--arrivals]``: every
``notifications/cancelled`` is appended to RECORD_FILE as ``cancelled <requestId>`` the moment
it arrives, so a test can prove the server itself received it; with ``--arrivals``, every
``hang()`` call is too, as ``arrived <requestId>``, for callers that cannot ask for progress.

Tools: ``echo(text)``, ``pid()``, ``hang()`` (never answers; sends progress first when asked,
so a test knows the call arrived), ``fail()`` (an ``isError`` result), ``meta()`` (the
request's ``_meta`` as JSON). One resource ``mem://note`` and one prompt ``greet(name)``.
With ``--linger`` it keeps running after stdin closes, so only its supervisor's teardown (a
signal) ends it.
"""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Any

TOOLS = [
    {"name": name, "description": f"the {name} tool", "inputSchema": schema}
    for name, schema in (
        ("echo", {"type": "object", "properties": {"text": {"type": "string"}}}),
        ("pid", {"type": "object"}),
        ("hang", {"type": "object"}),
        ("fail", {"type": "object"}),
        ("meta", {"type": "object"}),
    )
]
RESOURCES = [{"uri": "mem://note", "name": "note", "mimeType": "text/plain"}]
PROMPTS = [{"name": "greet", "arguments": [{"name": "name", "required": True}]}]


def send(message: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


def answer(request_id: object, result: dict[str, Any]) -> None:
    send({"jsonrpc": "2.0", "id": request_id, "result": result})


def text(value: str, is_error: bool = False) -> dict[str, Any]:
    return {"content": [{"type": "text", "text": value}], "isError": is_error}


def call(request_id: object, params: dict[str, Any]) -> None:
    name = params.get("name")
    args = params.get("arguments") or {}
    token = (params.get("_meta") or {}).get("progressToken")
    if token is not None:
        progress = {"progressToken": token, "progress": 1, "total": 2, "message": "arrived"}
        send({"jsonrpc": "2.0", "method": "notifications/progress", "params": progress})
    if name == "echo":
        answer(request_id, text(str(args.get("text", ""))))
    elif name == "pid":
        answer(request_id, text(str(os.getpid())))
    elif name == "fail":
        answer(request_id, text("it failed", is_error=True))
    elif name == "meta":
        answer(request_id, text(json.dumps(params.get("_meta") or {})))
    elif name == "hang":
        if "--arrivals" in sys.argv:
            with open(sys.argv[1], "a") as out:
                out.write(f"arrived {request_id}\n")
    else:
        send({"jsonrpc": "2.0", "id": request_id, "error": {"code": -32602, "message": "no"}})


def main() -> None:
    record = sys.argv[1]
    for line in sys.stdin:
        if not line.strip():
            continue
        message = json.loads(line)
        method, request_id = message.get("method"), message.get("id")
        params: dict[str, Any] = message.get("params") or {}
        if request_id is None:
            if method == "notifications/cancelled":
                with open(record, "a") as out:
                    out.write(f"cancelled {params.get('requestId')}\n")
            continue
        if method == "initialize":
            answer(
                request_id,
                {
                    "protocolVersion": "2025-11-25",
                    "capabilities": {"tools": {}, "resources": {}, "prompts": {}},
                    "serverInfo": {"name": "recording-server", "version": "1.0"},
                },
            )
        elif method == "ping":
            answer(request_id, {})
        elif method == "tools/list":
            answer(request_id, {"tools": TOOLS})
        elif method == "tools/call":
            call(request_id, params)
        elif method == "resources/list":
            answer(request_id, {"resources": RESOURCES})
        elif method == "resources/templates/list":
            answer(request_id, {"resourceTemplates": []})
        elif method == "resources/read":
            contents = [{"uri": params.get("uri"), "mimeType": "text/plain", "text": "hello"}]
            answer(request_id, {"contents": contents})
        elif method == "prompts/list":
            answer(request_id, {"prompts": PROMPTS})
        elif method == "prompts/get":
            who = (params.get("arguments") or {}).get("name", "")
            message = {"role": "user", "content": {"type": "text", "text": f"hello {who}"}}
            answer(request_id, {"messages": [message]})
        else:
            error = {"code": -32601, "message": f"method not found: {method}"}
            send({"jsonrpc": "2.0", "id": request_id, "error": error})
    while "--linger" in sys.argv:
        time.sleep(60)


if __name__ == "__main__":
    main()
