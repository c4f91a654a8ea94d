"""What the gateway reads from the supervisor's handle: which servers serve, and their catalogs."""

from __future__ import annotations

from mcpvisor.supervisor import ServerState, SupervisorClient, UnknownServerError
from mcpvisor.workers.catalog import Catalog


def serving(client: SupervisorClient) -> list[str]:
    """The configured servers (no isolated sessions) whose listings are offered right now.

    ACTIVE ones, and ones stopped by idle shutdown, whose next call wakes them. A server that
    is down (restarting, dropped, stopped) offers nothing until it is back, and its clients
    are told both times.
    """
    out = []
    for name, status in client.status().servers.items():
        if status.isolated_of is not None:
            continue
        if status.state is ServerState.ACTIVE or (
            status.state is ServerState.STOPPED and status.wakeable
        ):
            out.append(name)
    return out


def configured(client: SupervisorClient) -> list[str]:
    """Every configured server, in declared order (no isolated sessions)."""
    return [n for n, s in client.status().servers.items() if s.isolated_of is None]


def catalogs(client: SupervisorClient) -> list[tuple[str, Catalog]]:
    """``(server, Catalog)`` for every serving server, from the handle (no round trip).

    A server removed between reading the status and its catalog is left out.
    """
    out = []
    for name in serving(client):
        try:
            out.append((name, client.catalog(name)))
        except UnknownServerError:
            continue
    return out
