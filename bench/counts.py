"""Per-call counts of the request path's work, which mean something even on a busy machine.

``uv run python -m bench.counts`` connects each side (the handle, a raw ``mcp.Client`` in both
protocol modes, a bare ``ClientSession`` under Trio) to the same kind of server and, for a
few hundred sequential ``call_tool`` s after a warm-up, counts per call: Trio scheduler passes
(one ``epoll`` wait each), task steps, tasks spawned, cancel scopes entered, and Python
function calls (``sys.setprofile``). Timings on a shared 2-core machine drift with the other
jobs on it; these counts do not.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import trio
from mcp import Client
from mcp.client._memory import InMemoryTransport
from mcp.client.session import ClientSession
from mcp.client.stdio import stdio_client

import mcpvisor as mv
from bench.common import MCP_SERVER, NO_PROBES, raw_params, stdio_spec, text_of
from bench.harness import quiet_logs
from bench.mcp_server import make_server

Call = Callable[[], Awaitable[Any]]


class _Counts(trio.abc.Instrument):
    def __init__(self) -> None:
        self.on = False
        self.counter: Counter[str] = Counter()

    def before_io_wait(self, timeout: float) -> None:
        if self.on:
            self.counter["scheduler passes"] += 1

    def before_task_step(self, task: trio.lowlevel.Task) -> None:
        if self.on:
            self.counter["task steps"] += 1

    def task_spawned(self, task: trio.lowlevel.Task) -> None:
        if self.on:
            self.counter["tasks spawned"] += 1


def _profile(counter: Counter[str], functions: Counter[str] | None) -> Callable[..., None]:
    def hook(frame: Any, event: str, arg: Any) -> None:
        if event == "call":
            counter["python calls"] += 1
            code = frame.f_code
            if code.co_name == "__enter__" and "CancelScope" in code.co_qualname:
                counter["cancel scopes entered"] += 1
            if functions is not None:
                functions[f"{code.co_filename.split('site-packages/')[-1]}:{code.co_qualname}"] += 1

    return hook


async def _measure(
    call: Call, n: int, counts: _Counts, functions: Counter[str] | None
) -> dict[str, float]:
    for _ in range(20):
        await call()
    counts.counter.clear()
    counts.on = True
    sys.setprofile(_profile(counts.counter, functions))
    try:
        for _ in range(n):
            await call()
    finally:
        sys.setprofile(None)
        counts.on = False
    return {k: v / n for k, v in counts.counter.items()}


@asynccontextmanager
async def _sides(where: str) -> AsyncIterator[dict[str, Call]]:
    args = {"a": 1, "b": 2}
    async with AsyncExitStack() as stack:
        if where == "inprocess":
            server = make_server()
            spec: mv.ServerSpec = mv.InProcessSpec(name="s", server=server, timeouts=NO_PROBES)
            targets: list[Any] = [server, server, server]
        else:
            spec = stdio_spec("s", MCP_SERVER)
            targets = [raw_params(MCP_SERVER) for _ in range(3)]
        handle = await stack.enter_async_context(
            mv.open_supervisor(mv.SupervisorSpec(servers=[spec]))
        )
        raw = await stack.enter_async_context(Client(targets[0]))
        legacy = await stack.enter_async_context(Client(targets[1], mode="legacy"))
        if where == "inprocess":
            read, write = await stack.enter_async_context(InMemoryTransport(targets[2]))
        else:
            read, write = await stack.enter_async_context(stdio_client(targets[2]))
        session = await stack.enter_async_context(ClientSession(read, write))
        await session.initialize()
        sides: dict[str, Call] = {
            "handle": lambda: handle.call_tool("s", "add", args),
            f"raw mcp.Client ({raw.protocol_version})": lambda: raw.call_tool("add", args),
            f"raw mcp.Client legacy ({legacy.protocol_version})": lambda: legacy.call_tool(
                "add", args
            ),
            "bare ClientSession": lambda: session.call_tool("add", args),
        }
        for call in sides.values():
            assert text_of(await call()) == "3"
        yield sides


async def _main(where: str, n: int, top: int) -> None:
    quiet_logs()
    counts = _Counts()
    trio.lowlevel.add_instrument(counts)
    rows: dict[str, dict[str, float]] = {}
    tops: dict[str, Counter[str]] = {}
    async with _sides(where) as sides:
        for label, call in sides.items():
            functions: Counter[str] | None = Counter() if top else None
            rows[label] = await _measure(call, n, counts, functions)
            if functions is not None:
                tops[label] = functions
    keys = ["scheduler passes", "task steps", "tasks spawned", "cancel scopes entered"]
    keys.append("python calls")
    print(f"{where}: per call, mean of {n} sequential call_tool after 20 warm-up calls")
    print(f"{'':44}" + "".join(f"{k:>24}" for k in keys))
    for label, row in rows.items():
        print(f"{label:44}" + "".join(f"{row.get(k, 0):>24.2f}" for k in keys))
    if tops:
        first, *others = tops
        base = tops[others[0]] if others else Counter()
        diff = Counter(tops[first])
        diff.subtract(base)
        print(f"\n{first} minus {others[0] if others else 'nothing'}: calls per call")
        for name, count in sorted(diff.items(), key=lambda kv: -abs(kv[1]))[:top]:
            if count:
                print(f"  {count / n:+8.2f}  {name}")


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.counts", description=__doc__)
    parser.add_argument("where", choices=["inprocess", "stdio"], nargs="?", default="inprocess")
    parser.add_argument("-n", type=int, default=300, help="calls per side")
    parser.add_argument(
        "--top", type=int, default=0, help="the N functions whose counts differ most, handle - raw"
    )
    args = parser.parse_args()
    trio.run(_main, args.where, args.n, args.top)


if __name__ == "__main__":
    main()
