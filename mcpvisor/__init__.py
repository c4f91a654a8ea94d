"""mcpvisor: supervise MCP server connections the way OTP supervises processes."""

from importlib.metadata import version as _version

__version__ = _version("mcpvisor")

__all__ = ["__version__"]
