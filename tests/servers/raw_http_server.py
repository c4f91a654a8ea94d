"""A tiny handshake-era streamable-HTTP MCP server whose failures a test switches on.

Run as ``python raw_http_server.py``; it binds 127.0.0.1 on a free port and prints
``PORT <n>``. ``POST /mcp`` speaks JSON-RPC (JSON responses, no SSE); ``GET /mcp`` is 405, as
for servers without a standing stream. ``POST /control`` with ``{"mode": ...}`` switches how
every later MCP request is answered, to play a proxy or a restarted server:

- ``ok``: answer normally (the default).
- ``status:<code>``: answer with HTTP ``<code>`` and a plain-text body (a proxy's 502, a 401).
- ``gone400``: HTTP 400 with the TypeScript SDK's JSON-RPC error "Bad Request: No valid session
  ID provided", as a restarted server answers an old session id.
- ``gone400_no_id``: the same error as the TypeScript SDK's server-everything sends it, with no
  ``id`` key, which the SDK does not pass on (it stands in "Server returned an error response").
- ``gone404``: HTTP 404 with a JSON-RPC error "Session not found".
- ``ping_error``: answer ``ping`` with a JSON-RPC error, everything else normally.
- ``alternate``: answer every other ``ping`` with HTTP 502, everything else normally.

``GET /stats`` returns how many requests of each method arrived, as a JSON object.

``--echo-auth`` makes error messages repeat the request's Authorization header (as servers
that echo bad credentials do).
"""

from __future__ import annotations

import json
import socket
import sys
from typing import Any

import anyio
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

MODE = {"mode": "ok"}
STATS: dict[str, int] = {}
SESSION = "raw-session-1"


def rpc_result(request_id: Any, result: dict[str, Any]) -> JSONResponse:
    return JSONResponse({"jsonrpc": "2.0", "id": request_id, "result": result})


def rpc_error(request_id: Any, code: int, message: str, status: int = 200) -> JSONResponse:
    body = {"jsonrpc": "2.0", "id": request_id, "error": {"code": code, "message": message}}
    return JSONResponse(body, status_code=status)


async def mcp(request: Request) -> Response:
    if request.method == "GET":
        return PlainTextResponse("no stream here", status_code=405)
    if request.method == "DELETE":
        return PlainTextResponse("", status_code=200)
    message = json.loads(await request.body())
    method = message.get("method")
    request_id = message.get("id")
    STATS[method] = STATS.get(method, 0) + 1
    mode = MODE["mode"]
    auth = f" ({request.headers.get('authorization')})" if "--echo-auth" in sys.argv else ""
    if mode.startswith("status:"):
        text = f"upstream unavailable{auth}"
        return PlainTextResponse(text, status_code=int(mode.split(":")[1]))
    if mode == "gone400" and method != "initialize":
        return rpc_error(None, -32000, f"Bad Request: No valid session ID provided{auth}", 400)
    if mode == "gone400_no_id" and method != "initialize":
        said = f"Bad Request: No valid session ID provided{auth}"
        return JSONResponse(
            {"jsonrpc": "2.0", "error": {"code": -32000, "message": said}}, status_code=400
        )
    if mode == "alternate" and method == "ping" and STATS[method] % 2:
        return PlainTextResponse("bad gateway", status_code=502)
    if mode == "gone404" and method != "initialize":
        return rpc_error(request_id, -32001, "Session not found", 404)
    if request_id is None:
        return Response(status_code=202)
    if method == "initialize":
        answer = rpc_result(
            request_id,
            {
                "protocolVersion": "2025-11-25",
                "capabilities": {"tools": {}},
                "serverInfo": {"name": "raw-http", "version": "1.0"},
            },
        )
        answer.headers["mcp-session-id"] = SESSION
        return answer
    if method == "ping":
        if mode == "ping_error":
            return rpc_error(request_id, -32603, "ping is not for me")
        return rpc_result(request_id, {})
    if method == "tools/list":
        return rpc_result(
            request_id, {"tools": [{"name": "echo", "inputSchema": {"type": "object"}}]}
        )
    if method == "tools/call":
        text = str((message.get("params") or {}).get("arguments", {}).get("text", ""))
        return rpc_result(request_id, {"content": [{"type": "text", "text": text}]})
    return rpc_error(request_id, -32601, f"method not found: {method}")


async def control(request: Request) -> Response:
    MODE.update(json.loads(await request.body()))
    return PlainTextResponse("ok")


async def stats(_request: Request) -> Response:
    return JSONResponse(STATS)


app = Starlette(
    routes=[
        Route("/mcp", mcp, methods=["GET", "POST", "DELETE"]),
        Route("/control", control, methods=["POST"]),
        Route("/stats", stats, methods=["GET"]),
    ]
)


def main() -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(512)
    print(f"PORT {sock.getsockname()[1]}", flush=True)
    config = uvicorn.Config(app, log_level="warning", lifespan="off")
    anyio.run(uvicorn.Server(config).serve, [sock])


if __name__ == "__main__":
    main()
