"""The raw JSON-RPC test server (``raw_server.py``) plus the ways real servers misbehave.

No ``mcp`` import, so it starts fast. Everything ``raw_server.py`` does still works; this adds

flags:

- ``--mute-after-initialize``: answer ``initialize``, then never answer anything again.
- ``--grandchildren-then-exit N``: spawn N long-lived grandchildren (sharing its stdout), then
  exit with code 0 before reading anything.
- ``--log-methods``: write ``method <name>`` to stderr for every message received.
- ``--ignore-unknown``: never answer a method it does not know (as some servers do).
- ``--ping-error``: answer ``ping`` with a JSON-RPC error.
- ``--ping-pattern P``: answer the n-th ``ping`` only if ``P[n % len(P)]`` is ``a`` (``d``: drop).
- ``--term-file PATH``: on SIGTERM, write ``terminated`` to PATH, then exit.
- ``--pages N``: ``tools/list`` pages through N extra tools, one per page.
- ``--endless-cursor``: ``tools/list`` always returns the same next cursor.

tools:

- ``partial()``: write the first half of a JSON-RPC response and no newline, then go on.
- ``wrong_id()``: answer with an id nobody asked for.
- ``mute()``: answer this call, then never answer anything again (the process stays up).
- ``big(mb)``: a text result of ``mb`` mebibytes.
- ``flood(count, kind)``: send ``count`` notifications first (``kind`` ``log``: log messages;
  ``tools``: ``tools/list_changed``; ``progress``: progress for a token nobody holds), then
  answer.
- ``close_stdout()``: close stdout and keep running without reading stdin.
- ``detached_grandchild()``: spawn a long-lived grandchild in a session of its own (out of
  the server's process group, as Node's ``detached: true`` does) and return its pid.
- ``daemon()``: double-fork a daemon (fork, setsid, fork, the middle one exits), as crashpad
  does, and return its pid: it is in neither the server's tree nor its process group.
- ``chain(depth)``: a chain of ``depth`` processes below the server, each in a session of its
  own; returns the pids, deepest last.
- ``reply_then_exit()``: write a complete answer, then exit with code 0 at once.
- ``big(mb, order)``: with ``order`` ``ts``, the id comes last, as the TypeScript SDK writes it.
- ``touch_tools()``: send ``tools/list_changed`` without changing anything.
- ``leak_env(name)``: answer with a JSON-RPC error that repeats environment variable ``name``.
- ``meta()``: answer with the request's ``_meta`` as JSON text.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from typing import Any

import raw_server as raw

MUTED = False
EXTRA = (
    "partial",
    "wrong_id",
    "mute",
    "big",
    "flood",
    "close_stdout",
    "detached_grandchild",
    "daemon",
    "chain",
    "reply_then_exit",
    "touch_tools",
    "leak_env",
    "meta",
)
META: dict[str, Any] = {}
PINGS = 0
CHAIN = """
import os, subprocess, sys, time
depth = int(sys.argv[1])
if depth > 1:
    child = subprocess.Popen([sys.executable, "-c", sys.argv[2], str(depth - 1), sys.argv[2]],
                             stdout=subprocess.PIPE, start_new_session=True)
    print(os.getpid(), child.stdout.readline().decode().strip(), flush=True)
else:
    print(os.getpid(), flush=True)
time.sleep(600)
"""
raw.TOOLS.extend({"name": name, "inputSchema": {"type": "object"}} for name in EXTRA)

_raw_call_tool = raw.call_tool
_raw_handle = raw.handle


def notify(method: str, params: dict[str, object] | None = None) -> None:
    message: dict[str, object] = {"jsonrpc": "2.0", "method": method}
    if params is not None:
        message["params"] = params
    sys.stdout.write(json.dumps(message) + "\n")


def call_tool(request_id: object, name: str, args: dict[str, Any]) -> None:
    global MUTED
    if name == "partial":
        whole = json.dumps({"jsonrpc": "2.0", "id": request_id, "result": raw.text("cut")})
        sys.stdout.write(whole[: len(whole) // 2])
        sys.stdout.flush()
    elif name == "wrong_id":
        wrong = request_id + 100_000 if isinstance(request_id, int) else f"not-{request_id}"
        raw.result(wrong, raw.text("for somebody else"))
    elif name == "mute":
        raw.result(request_id, raw.text("going quiet"))
        MUTED = True
    elif name == "big":
        body = raw.text("x" * int(float(args.get("mb", 50)) * 1024 * 1024))
        if args.get("order") == "ts":
            message = {"result": body, "jsonrpc": "2.0", "id": request_id}
            sys.stdout.write(json.dumps(message) + "\n")
            sys.stdout.flush()
        else:
            raw.result(request_id, body)
    elif name == "daemon":
        read, write = os.pipe()
        if os.fork() == 0:
            os.setsid()
            if os.fork() == 0:
                os.write(write, str(os.getpid()).encode())
                os.close(write)
                for fd in (0, 1, 2):
                    os.close(fd)
                time.sleep(600)
            os._exit(0)
        os.close(write)
        pid = os.read(read, 32).decode()
        os.close(read)
        raw.result(request_id, raw.text(pid))
    elif name == "chain":
        depth = int(args.get("depth", 3))
        child = subprocess.Popen(
            [sys.executable, "-c", CHAIN, str(depth), CHAIN],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            start_new_session=True,
        )
        assert child.stdout is not None
        raw.result(request_id, raw.text(child.stdout.readline().decode().strip()))
    elif name == "reply_then_exit":
        raw.result(request_id, raw.text("answered"))
        os._exit(0)
    elif name == "meta":
        raw.result(request_id, raw.text(json.dumps(META)))
    elif name == "leak_env":
        value = os.environ.get(str(args.get("name")), "")
        raw.error(request_id, -32099, f"cannot open the database with {value}")
    elif name == "touch_tools":
        notify("notifications/tools/list_changed")
        raw.result(request_id, raw.text("touched"))
    elif name == "flood":
        count, kind = int(args.get("count", 1000)), str(args.get("kind", "log"))
        for i in range(count):
            if kind == "tools":
                notify("notifications/tools/list_changed")
            elif kind == "progress":
                notify("notifications/progress", {"progressToken": "nobody", "progress": i})
            else:
                notify("notifications/message", {"level": "info", "data": f"flood {i}"})
        raw.result(request_id, raw.text(f"flooded {count}"))
    elif name == "close_stdout":
        sys.stdout.flush()
        os.close(sys.stdout.fileno())
        while True:
            time.sleep(60)
    elif name == "detached_grandchild":
        child = subprocess.Popen(
            [sys.executable, "-c", "import time; time.sleep(600)"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        raw.result(request_id, raw.text(str(child.pid)))
    else:
        _raw_call_tool(request_id, name, args)


def _flag(name: str) -> str | None:
    return sys.argv[sys.argv.index(name) + 1] if name in sys.argv else None


KNOWN = {"initialize", "ping", "tools/list", "tools/call"}


def handle(message: dict[str, Any], answer_initialize: bool) -> None:
    global MUTED, PINGS
    if MUTED:
        return
    method = message.get("method")
    if "--log-methods" in sys.argv and method is not None:
        sys.stderr.write(f"method {method}\n")
        sys.stderr.flush()
    request_id = message.get("id")
    if method == "tools/call":
        META.clear()
        META.update((message.get("params") or {}).get("_meta") or {})
    if request_id is not None and method == "ping":
        PINGS += 1
        pattern = _flag("--ping-pattern")
        if pattern is not None and pattern[(PINGS - 1) % len(pattern)] == "d":
            return
        if "--ping-error" in sys.argv:
            raw.error(request_id, -32603, "ping is not for me")
            return
    if request_id is not None and method == "tools/list" and _list_tools(message):
        return
    if "--ignore-unknown" in sys.argv and request_id is not None and method not in KNOWN:
        return
    _raw_handle(message, answer_initialize)
    if message.get("method") == "initialize" and "--mute-after-initialize" in sys.argv:
        MUTED = True


def _list_tools(message: dict[str, Any]) -> bool:
    """Answer a paged or endless ``tools/list`` if asked to; False to leave it to raw."""
    cursor = (message.get("params") or {}).get("cursor")
    if "--endless-cursor" in sys.argv:
        raw.result(
            message["id"], {"tools": raw.TOOLS if cursor is None else [], "nextCursor": "again"}
        )
        return True
    pages = _flag("--pages")
    if pages is None:
        return False
    page = 0 if cursor is None else int(cursor)
    tools = (
        raw.TOOLS if page == 0 else [{"name": f"paged{page}", "inputSchema": {"type": "object"}}]
    )
    answer: dict[str, object] = {"tools": tools}
    if page < int(pages):
        answer["nextCursor"] = str(page + 1)
    raw.result(message["id"], answer)
    return True


def _on_sigterm(_signum: int, _frame: object) -> None:
    path = _flag("--term-file")
    assert path is not None
    with open(path, "w") as file:
        file.write("terminated")
    os._exit(0)


def main() -> None:
    args = sys.argv[1:]
    if "--term-file" in args:
        signal.signal(signal.SIGTERM, _on_sigterm)
    if "--grandchildren-then-exit" in args:
        for _ in range(int(args[args.index("--grandchildren-then-exit") + 1])):
            subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
        sys.exit(0)
    raw.call_tool = call_tool
    raw.handle = handle
    raw.main()


if __name__ == "__main__":
    main()
