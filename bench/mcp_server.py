"""The SDK's own ``MCPServer`` with one tool, run over stdio or built for in-process use.

``python bench/mcp_server.py`` serves stdio; :func:`make_server` builds a fresh instance for
an in-process spec. Both sides of a comparison always get servers built by this module.
"""

from mcp.server.mcpserver import MCPServer


def make_server(name: str = "bench-mcp-server") -> MCPServer:
    """A fresh server with ``add(a, b)``."""
    server = MCPServer(name)

    @server.tool()
    def add(a: int, b: int) -> int:
        """Add two integers."""
        return a + b

    return server


if __name__ == "__main__":
    make_server().run()
