"""A healthy stdio MCP server: small, pure tools that always answer.

Run it with ``python -m mcpvisor.demo.notes``; it speaks MCP on stdin/stdout.
"""

from __future__ import annotations

from mcp.server.mcpserver import MCPServer

server: MCPServer = MCPServer("notes", log_level="WARNING")


@server.tool()
def echo(text: str) -> str:
    """Return ``text`` unchanged."""
    return text


@server.tool()
def add(a: float, b: float) -> float:
    """Return the sum of ``a`` and ``b``."""
    return a + b


@server.tool()
def word_count(text: str) -> int:
    """Count the whitespace-separated words in ``text``."""
    return len(text.split())


def main() -> None:
    server.run()


if __name__ == "__main__":
    main()
