"""A "resilient manager" for MCP servers, as a restart policy instead of a reconnect loop.

A common hand-written recipe wraps a multi-server manager in a class with a background task
that wakes every ``reconnect_interval`` seconds, walks the failed servers, calls ``connect()``
on each, and keeps a ``retry_counts`` dict to skip a server after ``max_retries`` failures.
Side by side with what replaces each piece here::

    hand-written manager                         mcpvisor
    ------------------------------------------   ---------------------------------------------
    background reconnect task, a sleep loop      the supervisor restarts a server as soon as
                                                 its process exits or its session breaks
    fixed reconnect_interval (e.g. 30-60 s)      Backoff(initial, max, multiplier, jitter):
                                                 0.2 s, 0.4 s, 0.8 s... capped, jittered so
                                                 restarts of many servers do not line up
    retry_counts[name] >= max_retries -> skip    RestartPolicy(max_restarts=5, within=60):
    (forever, unless someone resets the count)   more than 5 restarts in any 60 s drops the
                                                 server, an explicit, visible state
    reset the count after one good connect       reset_after=10: the backoff starts over after
                                                 10 s of uptime, so one lucky restart does not
                                                 hide a crash loop
    active_servers / failed_servers properties   client.status().active / .failed / .dropped
    log lines in the loop                        client.subscribe(): typed lifecycle events
    a crash between two loop runs: calls fail    a call waits (within its timeout) while the
    until the next run                           server restarts; a call cut off by the crash
                                                 raises RequestInterruptedError
    cancel the task, then exit the manager       leave ``async with open_supervisor(...)``

Run it with ``python examples/resilient_manager.py``: the ``flaky`` server crashes on every
third call, and every lookup still gets its answer.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import structlog
import trio

import mcpvisor as mv
from mcpvisor.demo import stdio_spec

POLICY = mv.RestartPolicy(
    restart="permanent",
    max_restarts=5,
    within=60.0,
    backoff=mv.Backoff(initial=0.2, max=5.0, multiplier=2.0, jitter=0.5),
    reset_after=10.0,
)
"""Everything the hand-written reconnect loop did, as data."""


async def main(calls: int = 8) -> dict[str, Any]:
    """Make ``calls`` lookups to a server that crashes every third call; report what happened.

    A call cut off by a crash raises :class:`RequestInterruptedError` and is never retried
    for you (a tool may have had effects before the server died). ``lookup`` has none, so
    this caller retries it, and the retry waits for the restarted server.
    """
    spec = mv.SupervisorSpec(
        servers=[stdio_spec("flaky", None, "--crash-after", "3", restart=POLICY, required=True)]
    )
    answered = interrupted = 0
    async with mv.open_supervisor(spec) as client:
        for i in range(calls):
            for _attempt in range(5):
                try:
                    result = await client.call_tool("flaky", "lookup", {"key": f"k{i}"}, timeout=30)
                except mv.RequestInterruptedError:
                    interrupted += 1
                    print(f"call {i}: interrupted by a crash; retrying once flaky is back")
                    continue
                answered += 1
                print(f"call {i}: {' '.join(getattr(b, 'text', '') for b in result.content)}")
                break
        status = client.status()
    report = {
        "answered": answered,
        "interrupted": interrupted,
        "restarts": status.servers["flaky"].restarts,
        "active": status.active,
        "failed": status.failed,
        "dropped": status.dropped,
    }
    print(report)
    return report


def quiet_logging() -> None:
    """mcpvisor logs through structlog and leaves configuring it to the host: warnings and
    above, to stderr."""
    structlog.configure(
        wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
    )


if __name__ == "__main__":
    quiet_logging()
    trio.run(main)
