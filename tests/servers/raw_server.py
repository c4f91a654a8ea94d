"""A tiny handshake-era MCP server in raw JSON-RPC over stdio, with no ``mcp`` import.

It starts in tens of milliseconds, so tests that spawn many servers (crash loops, chaos) stay
fast. It answers ``server/discover`` with "method not found", as servers in the wild do, so
clients fall back to the ``initialize`` handshake.

Flags: ``--no-initialize`` (never answer ``initialize``), ``--garbage-at-start`` (print a
non-JSON line first), ``--ignore-sigterm``, ``--linger`` (keep running after stdin closes),
``--exit-at-start CODE`` (exit before reading anything).

Every ``tools/call`` that carries a progress token first gets a progress notification, which
tells a test that the call has reached the server. Tools:

- ``echo(text)``; ``fail()`` returns an ``isError`` result; ``rpc_error()`` answers with
  JSON-RPC error -32099.
- ``hang()`` never answers; a ``notifications/cancelled`` is reported on stderr as
  ``cancelled <id>``.
- ``exit(code)`` exits at once; ``garbage()`` prints a non-JSON line, then answers.
- ``change_tools()`` adds a tool and sends ``notifications/tools/list_changed``.
- ``stderr(lines, length)`` writes to stderr.
- ``grandchild()`` spawns a long-lived grandchild and returns its pid.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from typing import Any

TOOLS = [
    {"name": name, "inputSchema": {"type": "object"}}
    for name in (
        "echo",
        "hang",
        "exit",
        "garbage",
        "change_tools",
        "stderr",
        "grandchild",
        "fail",
        "rpc_error",
    )
]


def send(message: dict[str, object]) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


def result(request_id: object, value: dict[str, object]) -> None:
    send({"jsonrpc": "2.0", "id": request_id, "result": value})


def error(request_id: object, code: int, message: str) -> None:
    send({"jsonrpc": "2.0", "id": request_id, "error": {"code": code, "message": message}})


def text(value: str, is_error: bool = False) -> dict[str, object]:
    return {"content": [{"type": "text", "text": value}], "isError": is_error}


def call_tool(request_id: object, name: str, args: dict[str, Any]) -> None:
    if name == "echo":
        result(request_id, text(str(args.get("text", ""))))
    elif name == "hang":
        pass
    elif name == "exit":
        os._exit(int(args.get("code", 0)))
    elif name == "garbage":
        sys.stdout.write("this is not json-rpc\n")
        sys.stdout.flush()
        result(request_id, text("after garbage"))
    elif name == "change_tools":
        TOOLS.append({"name": f"extra{len(TOOLS)}", "inputSchema": {"type": "object"}})
        send({"jsonrpc": "2.0", "method": "notifications/tools/list_changed"})
        result(request_id, text("changed"))
    elif name == "stderr":
        line = "x" * int(args.get("length", 10))
        for _ in range(int(args.get("lines", 1))):
            sys.stderr.write(line + "\n")
        sys.stderr.flush()
        result(request_id, text("written"))
    elif name == "grandchild":
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
        result(request_id, text(str(child.pid)))
    elif name == "fail":
        result(request_id, text("it failed", is_error=True))
    elif name == "rpc_error":
        error(request_id, -32099, "custom failure")
    else:
        error(request_id, -32602, f"unknown tool {name}")


def handle(message: dict[str, Any], answer_initialize: bool) -> None:
    method = message.get("method")
    request_id = message.get("id")
    if request_id is None:
        if method == "notifications/cancelled":
            cancelled = message.get("params") or {}
            sys.stderr.write(f"cancelled {cancelled.get('requestId')}\n")
            sys.stderr.flush()
        return
    params: dict[str, Any] = message.get("params") or {}
    if method == "initialize":
        if answer_initialize:
            result(
                request_id,
                {
                    "protocolVersion": "2025-11-25",
                    "capabilities": {"tools": {"listChanged": True}},
                    "serverInfo": {"name": "raw-server", "version": "1.0"},
                },
            )
    elif method == "ping":
        result(request_id, {})
    elif method == "tools/list":
        result(request_id, {"tools": TOOLS})
    elif method == "tools/call":
        token = (params.get("_meta") or {}).get("progressToken")
        if token is not None:
            progress = {"progressToken": token, "progress": 0}
            send({"jsonrpc": "2.0", "method": "notifications/progress", "params": progress})
        call_tool(request_id, str(params.get("name")), params.get("arguments") or {})
    else:
        error(request_id, -32601, f"method not found: {method}")


def main() -> None:
    args = sys.argv[1:]
    if "--ignore-sigterm" in args:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    if "--exit-at-start" in args:
        sys.exit(int(args[args.index("--exit-at-start") + 1]))
    if "--garbage-at-start" in args:
        sys.stdout.write("Server starting... (not json)\n")
        sys.stdout.flush()
    answer_initialize = "--no-initialize" not in args
    for line in sys.stdin:
        if line.strip():
            handle(json.loads(line), answer_initialize)
    if "--linger" in args:
        while True:
            time.sleep(60)


if __name__ == "__main__":
    main()
