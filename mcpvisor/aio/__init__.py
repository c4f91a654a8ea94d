"""mcpvisor for asyncio hosts: the whole supervisor handle from FastAPI, uvicorn or any loop.

::

    import mcpvisor.aio

    async with mcpvisor.aio.open_supervisor("mcp.json") as client:
        result = await client.call_tool("files__read_file", {"path": "/etc/hosts"})
        print(client.status().to_dict()["status"])

The supervisor runs in its own Trio thread (or, with ``runner="guest"``, as a Trio guest on
the host loop); every method of :class:`SupervisorClient` is an asyncio coroutine, async
iterator or async context manager with the Trio handle's name, signature and errors. Needs
only the standard library and trio.
"""

from mcpvisor.aio._events import ResourceUpdates, Subscription
from mcpvisor.aio._handle import IsolatedSession, ProgressCallback, SupervisorClient
from mcpvisor.aio._runners import Runner
from mcpvisor.aio._supervise import SpecSource, Supervision, open_supervisor

__all__ = [
    "IsolatedSession",
    "ProgressCallback",
    "ResourceUpdates",
    "Runner",
    "SpecSource",
    "Subscription",
    "Supervision",
    "SupervisorClient",
    "open_supervisor",
]
