"""Alert when the supervisor gives up on a server.

A server that keeps failing is restarted with backoff until its restart budget is spent;
then it is DROPPED and stays down until someone revives it. That is the moment a person
should hear about it, so this example subscribes to the lifecycle events and sends an alert
(here: a line on stderr; in production a pager, a Slack webhook, a metric) for each server
that reaches DROPPED, with the cause. Restarts that worked are logged, not alerted.

``broken`` never starts: after 1 + 2 attempts it is dropped and the alert fires. Run it with
``python examples/alert_on_drop.py``.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from typing import Any

import attrs
import structlog
import trio

import mcpvisor as mv
from mcpvisor.demo import broken_spec, stdio_spec


@attrs.frozen
class Alert:
    """One server given up on: which, why, and after how many restarts."""

    server: str
    cause: str | None
    restarts: int


def print_alert(alert: Alert) -> None:
    print(
        f"ALERT: {alert.server} dropped after {alert.restarts} restarts: {alert.cause}",
        file=sys.stderr,
    )


async def alert_on_drop(
    client: Any,
    send_alert: Callable[[Alert], None],
    *,
    stop_when: Callable[[mv.SupervisorStatus], bool] = lambda status: False,
) -> None:
    """Call ``send_alert`` for every server that becomes DROPPED, until ``stop_when``.

    Subscribe first, then look at the status: a server dropped before the subscription
    (during startup, say) is still reported, and none is reported twice.
    """
    alerted: set[str] = set()

    def check(status: mv.SupervisorStatus) -> None:
        for name in status.dropped:
            if name not in alerted:
                alerted.add(name)
                server = status.servers[name]
                send_alert(Alert(name, server.last_error, server.restarts))

    async with client.subscribe() as events:
        check(client.status())
        if stop_when(client.status()):
            return
        async for event in events:
            if isinstance(event, mv.EventsLost) or event.new is mv.ServerState.DROPPED:
                check(client.status())
            if stop_when(client.status()):
                return


async def main() -> list[Alert]:
    """Supervise a healthy and a broken server; return once the broken one's alert is sent."""
    spec = mv.SupervisorSpec(
        servers=[
            stdio_spec("notes", required=True),
            broken_spec(
                restart=mv.RestartPolicy(
                    max_restarts=2, backoff=mv.Backoff(initial=0.1, max=0.5, jitter=0.0)
                )
            ),
        ]
    )
    alerts: list[Alert] = []

    def send(alert: Alert) -> None:
        alerts.append(alert)
        print_alert(alert)

    async with mv.open_supervisor(spec) as client:
        await alert_on_drop(client, send, stop_when=lambda status: "broken" in status.dropped)
        print(f"notes is still {client.status().servers['notes'].state.value}")
    return alerts


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
