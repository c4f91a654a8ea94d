"""Scenario 12's sides, in a process where no OpenTelemetry provider was ever installed.

Scenario 11 must install a global tracer provider (the mcp SDK's own span goes through it),
and a process keeps it: after that, no side in the same process sees what a host without an
SDK sees, the API's proxy providers. So these three sides run here, in a child process of the
bench, which prints their samples as JSON: a supervisor without hooks, one with
:class:`~mcpvisor.OpenTelemetryHooks`, and a second one without hooks (the A/A pair).

``python -m bench.scenarios.otel_absent [--quick]``
"""

from __future__ import annotations

import json
import sys
from collections.abc import Awaitable, Callable
from functools import partial

import trio

import mcpvisor as mv
from bench.common import MCP_SERVER, Config, alternate, stdio_spec, text_of, timed_calls

SIDES = ("plain", "hooks", "again")


async def measure(cfg: Config) -> dict[str, list[float]]:
    """Each side's call_tool latencies, in 20-call turns that rotate which side goes first."""
    from opentelemetry import metrics, trace

    assert type(trace.get_tracer_provider()).__name__ == "ProxyTracerProvider"
    assert type(metrics.get_meter_provider()).__name__ == "_ProxyMeterProvider"
    samples: dict[str, list[float]] = {side: [] for side in SIDES}
    args = {"a": 1, "b": 2}

    def spec() -> mv.SupervisorSpec:
        return mv.SupervisorSpec(servers=[stdio_spec("s", MCP_SERVER)])

    async with (
        mv.open_supervisor(spec()) as plain,
        mv.open_supervisor(spec(), hooks=mv.OpenTelemetryHooks()) as hooked,
        mv.open_supervisor(spec()) as again,
    ):
        clients = dict(zip(SIDES, (plain, hooked, again), strict=True))
        for client in clients.values():
            assert text_of(await client.call_tool("s", "add", args)) == "3"
            await timed_calls(partial(client.call_tool, "s", "add", args), cfg.size(100, 5), [])
        n = cfg.size(20, 5)

        def side(name: str) -> Callable[[], Awaitable[None]]:
            call = partial(clients[name].call_tool, "s", "add", args)
            return partial(timed_calls, call, n, samples[name])

        await alternate(cfg.size(200, 2), [side(name) for name in SIDES], settle=False)
    return samples


def main() -> None:
    from bench.harness import quiet_logs

    quiet_logs()
    cfg = Config(quick="--quick" in sys.argv[1:])
    json.dump(trio.run(measure, cfg), sys.stdout)


if __name__ == "__main__":
    main()
