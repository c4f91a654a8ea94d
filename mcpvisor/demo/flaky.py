"""A stdio MCP server that crashes: it exits with code 1 in the middle of a call.

``--crash-after K`` makes the K-th ``lookup`` call kill the process (exit code 1) instead of
answering, so the caller sees its request interrupted and the supervisor sees a crash. A
restarted process counts from zero again. ``--crash-after 0`` never crashes.
"""

from __future__ import annotations

import argparse
import os
import sys

from mcp.server.mcpserver import MCPServer

server: MCPServer = MCPServer("flaky", log_level="WARNING")
_state = {"calls": 0, "crash_after": 0}


@server.tool()
def lookup(key: str) -> str:
    """Look ``key`` up in a made-up index; now and then the whole server crashes instead."""
    _state["calls"] += 1
    if _state["crash_after"] and _state["calls"] >= _state["crash_after"]:
        print(f"flaky: simulated crash after {_state['calls']} calls", file=sys.stderr, flush=True)
        os._exit(1)
    return f"{key}: found in shard {sum(map(ord, key)) % 7}"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m mcpvisor.demo.flaky")
    parser.add_argument("--crash-after", type=int, default=5, metavar="K")
    args = parser.parse_args(argv)
    _state["crash_after"] = max(0, args.crash_after)
    server.run()


if __name__ == "__main__":
    main()
