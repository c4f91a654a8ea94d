"""Framework adapters on top of :mod:`mcpvisor.aio`, each behind its own extra.

- :mod:`mcpvisor.adapters.openai_agents` (``mcpvisor[openai-agents]``): ``agents.mcp.MCPServer``
  implementations, so ``Agent(mcp_servers=...)`` runs on supervised servers unchanged.
- :mod:`mcpvisor.adapters.ag2` (``mcpvisor[ag2]``): AG2 toolkits of supervised tools.
- :mod:`mcpvisor.adapters.langchain` (``mcpvisor[langchain]``): ``StructuredTool`` s on
  langchain-core alone.

Importing this package loads no framework; importing an adapter without its extra raises an
``ImportError`` that names the extra.
"""

from __future__ import annotations


def missing_extra(adapter: str, extra: str, error: ImportError) -> ImportError:
    """The one-line error an adapter raises when its framework is not installed."""
    return ImportError(
        f"mcpvisor.adapters.{adapter} needs the {extra!r} extra: "
        f"pip install 'mcpvisor[{extra}]' (missing module {error.name!r})"
    )
