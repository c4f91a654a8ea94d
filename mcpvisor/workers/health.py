"""Health probes: a session is alive while the server really answers, and failed after misses.

A probe passes only on a real answer. A JSON-RPC error is one (the server parsed the request
and replied); an HTTP failure status (a proxy's 502, a 401 at the endpoint), a closed
connection, a transport exception or no answer within ``probe_timeout`` is a miss. Misses are
counted consecutively: one good probe resets the count, and ``probe_misses`` in a row fail the
session. A server that answers "no such session" has restarted: that ends the session at once.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import trio
from mcp import Client
from mcp.shared.exceptions import MCPError
from mcp_types import CONNECTION_CLOSED

from mcpvisor.specs import Timeouts
from mcpvisor.workers.operations import Probe
from mcpvisor.workers.remote import HttpStatusLog
from mcpvisor.workers.reports import Ready

_PROBE = Probe()


async def probe_once(
    client: Client,
    ready: Ready,
    timeout: float,
    http: HttpStatusLog | None,
    nursery: trio.Nursery,
) -> str | None:
    """None when the server answered; else what went wrong, in words safe to log.

    Raises the SDK's ``MCPError`` when the server says the session is gone. The ping runs in
    a task of ``nursery`` so that a miss counts at ``timeout``: cancelling a ping makes the
    SDK send ``notifications/cancelled`` first, shielded for up to five seconds, which a
    wedged HTTP server makes it spend in full.
    """
    failures = http.failures if http is not None else 0
    said: list[str | MCPError | None] = []
    answered = trio.Event()
    scope = trio.CancelScope()

    async def ping() -> None:
        with scope:
            try:
                said.append(await _ping(client, ready, http, failures))
            except MCPError as error:
                said.append(error)
            answered.set()

    nursery.start_soon(ping)
    with trio.move_on_after(timeout):
        await answered.wait()
    if not said:
        scope.cancel()
        return f"no answer within {timeout:g}s"
    if isinstance(said[0], MCPError):
        raise said[0]
    return said[0]


async def _ping(
    client: Client, ready: Ready, http: HttpStatusLog | None, failures: int
) -> str | None:
    try:
        await _PROBE.perform(client, ready)
    except MCPError as error:
        if http is not None and http.says_session_gone(error):
            raise
        if error.code == CONNECTION_CLOSED:
            return "the connection is closed"
        if http is not None and http.failures > failures:
            return f"the server answered {http.last}"
        return None  # a JSON-RPC error is an answer
    except Exception as error:
        if http is not None and http.failures > failures:
            return f"the server answered {http.last}"
        text = str(error)
        return f"{type(error).__name__}: {text}" if text else type(error).__name__
    return None


async def probe_loop(
    client: Client,
    ready: Ready,
    timeouts: Timeouts,
    *,
    http: HttpStatusLog | None,
    on_failed: Callable[[str], None],
    on_session_gone: Callable[[MCPError], None],
    log: Any,
    redact: Callable[[str], str],
) -> None:
    """Probe every ``probe_interval`` until ``probe_misses`` consecutive misses (see module)."""
    interval = timeouts.probe_interval
    assert interval is not None
    misses = 0
    async with trio.open_nursery() as pings:
        while True:
            await trio.sleep(interval)
            try:
                problem = await probe_once(client, ready, timeouts.probe_timeout, http, pings)
            except MCPError as error:
                on_session_gone(error)
                break
            if problem is None:
                misses = 0
                continue
            misses += 1
            problem = redact(problem)[:500]
            log.warning("server.probe_missed", misses=misses, problem=problem)
            if misses >= timeouts.probe_misses:
                on_failed(f"{misses} consecutive health probes failed: {problem}")
                break
        pings.cancel_scope.cancel()
