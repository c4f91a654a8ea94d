"""The raw JSON-RPC test server (``raw_server.py``) plus the ways real servers misbehave.

No ``mcp`` import, so it starts fast. Everything ``raw_server.py`` does still works; this adds

flags:

- ``--mute-after-initialize``: answer ``initialize``, then never answer anything again.
- ``--grandchildren-then-exit N``: spawn N long-lived grandchildren (sharing its stdout), then
  exit with code 0 before reading anything.

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
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from typing import Any

import raw_server as raw

MUTED = False
EXTRA = ("partial", "wrong_id", "mute", "big", "flood", "close_stdout", "detached_grandchild")
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
        raw.result(request_id, raw.text("x" * int(float(args.get("mb", 50)) * 1024 * 1024)))
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


def handle(message: dict[str, Any], answer_initialize: bool) -> None:
    global MUTED
    if MUTED:
        return
    _raw_handle(message, answer_initialize)
    if message.get("method") == "initialize" and "--mute-after-initialize" in sys.argv:
        MUTED = True


def main() -> None:
    args = sys.argv[1:]
    if "--grandchildren-then-exit" in args:
        for _ in range(int(args[args.index("--grandchildren-then-exit") + 1])):
            subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
        sys.exit(0)
    raw.call_tool = call_tool
    raw.handle = handle
    raw.main()


if __name__ == "__main__":
    main()
