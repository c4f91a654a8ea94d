"""``mcpvisor run --metrics HOST:PORT``: the option, and the scrape server it starts.

The CLI keeps only a few wiring lines; everything about metrics lives here.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any

import trio

from mcpvisor.specs.errors import UsageError
from mcpvisor.supervisor.hooks import Hooks


def metrics_address(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:9464`` for IPv6; ``:9464`` means 127.0.0.1) as ``(host, port)``."""
    host, sep, port_text = text.rpartition(":")
    if not sep or not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise argparse.ArgumentTypeError(f"expected HOST:PORT such as 127.0.0.1:9464, not {text!r}")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return host or "127.0.0.1", int(port_text)


def add_metrics_option(parser: argparse.ArgumentParser) -> None:
    """Add ``--metrics HOST:PORT`` to a sub-command."""
    parser.add_argument(
        "--metrics",
        metavar="HOST:PORT",
        type=metrics_address,
        default=None,
        help="serve Prometheus metrics at http://HOST:PORT/metrics (needs mcpvisor[prometheus])",
    )


class MetricsEndpoint:
    """What ``--metrics`` adds to a supervising command: hooks first, a server once it runs.

    With no address it does nothing. With one, it needs the ``prometheus`` extra and fails at
    construction (before any server starts) with the error naming it.
    """

    def __init__(self, address: tuple[str, int] | None) -> None:
        self.address = address
        self._metrics: Any = None
        if address is not None:
            try:
                from mcpvisor.observability.prometheus import PrometheusMetrics
            except ImportError as error:
                raise UsageError("--metrics", str(error)) from None
            self._metrics = PrometheusMetrics()

    @property
    def hooks(self) -> Sequence[Hooks]:
        """The hooks to give the supervisor: none without an address."""
        return () if self._metrics is None else (self._metrics,)

    async def start(self, nursery: trio.Nursery, client: Any) -> None:
        """Watch ``client`` and serve scrapes in ``nursery``; returns once listening."""
        if self._metrics is None or self.address is None:
            return
        self._metrics.watch(client)
        host, port = await nursery.start(self._metrics.serve, *self.address)
        shown = f"[{host}]" if ":" in host else host
        print(f"mcpvisor: metrics at http://{shown}:{port}/metrics", file=sys.stderr, flush=True)
