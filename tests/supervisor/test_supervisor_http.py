"""The supervisor with a real streamable-HTTP server that is killed and restarted on its port."""

from __future__ import annotations

import trio

import mcpvisor as mv
from tests.conftest import MCP_SERVER
from tests.supervisor.support import state_is, until
from tests.workers.worker_helpers import http_server


async def test_an_http_server_restarted_on_its_port_is_recovered() -> None:
    async with http_server(MCP_SERVER, "streamable-http") as server:
        spec = mv.HttpSpec(
            name="remote",
            url=server.url,
            restart=mv.RestartPolicy(
                max_restarts=50, backoff=mv.Backoff(initial=0.05, max=0.2, jitter=0)
            ),
            timeouts=mv.Timeouts(
                connect=5,
                request=10,
                shutdown=2,
                probe_interval=0.2,
                probe_timeout=2,
                probe_misses=1,
            ),
        )
        async with mv.open_supervisor(mv.SupervisorSpec(servers=[spec])) as client:
            result = await client.call_tool("remote", "add", {"a": 2, "b": 2})
            assert result.structured_content == {"result": 4}
            port = server.port
            await server.kill()
            await until(client, lambda s: s.servers["remote"].restarts >= 1)
            await server.start(port)
            status = await until(client, state_is("remote", mv.ServerState.ACTIVE))
            assert status.servers["remote"].last_error
            with trio.fail_after(30):
                result = await client.call_tool("remote", "add", {"a": 3, "b": 4})
            assert result.structured_content == {"result": 7}
