"""What every scenario shares: sizes, samples and their statistics, outcomes, the servers."""

from __future__ import annotations

import gc
import math
import statistics
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import attrs
import trio
from mcp import Client, StdioServerParameters
from mcp.client._memory import InMemoryTransport
from mcp.client._probe import negotiate_auto
from mcp.client.session import ClientSession
from mcp.client.stdio import stdio_client

import mcpvisor as mv

HERE = Path(__file__).resolve().parent
RAW_SERVER = str(HERE / "raw_server.py")
MCP_SERVER = str(HERE / "mcp_server.py")

NO_PROBES = mv.Timeouts(probe_interval=None)
"""Probes off on both sides: a ping landing inside a timed call would be noise, not overhead."""

FAST_RESTART = mv.RestartPolicy(
    max_restarts=1_000_000, within=1.0, backoff=mv.Backoff(initial=0, max=0, jitter=0)
)
"""Restart at once, forever: the crash scenarios kill the same server again and again."""


@attrs.frozen
class Config:
    """How big a run is: ``quick`` shrinks every scenario to a smoke test."""

    quick: bool = False

    def size(self, full: int, quick: int) -> int:
        """``full`` for a real run, ``quick`` for ``--quick``."""
        return quick if self.quick else full


@attrs.frozen
class Series:
    """One measured quantity: its samples (seconds, bytes or a rate) and how to show them."""

    label: str
    samples: tuple[float, ...]
    unit: str = "ms"

    @property
    def median(self) -> float:
        return statistics.median(self.samples) if self.samples else math.nan

    @property
    def p99(self) -> float:
        """The nearest-rank 99th percentile; for a rate (``/s``), the 1st: the slow tail."""
        if not self.samples:
            return math.nan
        ordered = sorted(self.samples, reverse=self.unit == "/s")
        return ordered[max(0, math.ceil(0.99 * len(ordered)) - 1)]

    def show(self, value: float) -> str:
        """``value`` (in base units) in this series' display unit."""
        if math.isnan(value):
            return "-"
        scale = {"ms": 1e3, "us": 1e6, "s": 1.0, "KiB": 1 / 1024, "/s": 1.0}[self.unit]
        shown = value * scale
        digits = 0 if abs(shown) >= 100 else 1 if abs(shown) >= 10 else 2 if abs(shown) >= 1 else 3
        return f"{shown:,.{digits}f} {self.unit}"


@attrs.frozen
class Outcome:
    """A scenario's result: its series, the one figure its goal is about, and the verdict."""

    number: int
    title: str
    series: tuple[Series, ...]
    figure: str
    """What ``value`` is, e.g. ``ours / raw (median)``."""
    value: float
    goal: str
    met: bool
    notes: tuple[str, ...] = ()
    seconds: float = 0.0


def series(label: str, samples: Sequence[float], unit: str = "ms") -> Series:
    return Series(label, tuple(samples), unit)


@attrs.define
class FullCollections:
    """Python's full (generation 2) garbage collections seen while :meth:`watch` was active.

    Under 1000 calls in flight one such pause takes tens to hundreds of milliseconds, and
    which side of a comparison it lands in is close to chance, so throughput figures report
    it beside the rate."""

    count: int = 0
    seconds: float = 0.0
    elapsed: float = 0.0
    """Wall time spent inside :meth:`watch`, collections included."""

    @contextmanager
    def watch(self) -> Iterator[None]:
        clock = time.perf_counter
        began = 0.0

        def callback(phase: str, info: dict[str, int]) -> None:
            nonlocal began
            if info["generation"] != 2:
                return
            if phase == "start":
                began = clock()
            else:
                self.count += 1
                self.seconds += clock() - began

        gc.callbacks.append(callback)
        t = clock()
        try:
            yield
        finally:
            self.elapsed += clock() - t
            gc.callbacks.remove(callback)

    def describe(self, label: str, calls: int) -> str:
        share = self.seconds / self.elapsed if self.elapsed else 0.0
        rest = self.elapsed - self.seconds
        rate = calls / rest if rest > 0 else math.nan
        return (
            f"{label} {self.count} ({self.seconds * 1e3:,.0f} ms, {share:.0%} of its time; "
            f"{rate:,.0f} calls/s outside them)"
        )


def ratio(a: Series, b: Series) -> float:
    """``median(a) / median(b)``."""
    return a.median / b.median if b.median else math.inf


async def alternate(
    rounds: int, sides: Sequence[Callable[[], Awaitable[None]]], *, settle: bool = True
) -> None:
    """Run each side once per round, rotating which goes first, so drift hits all alike."""
    for r in range(rounds):
        for i in range(len(sides)):
            if settle:
                gc.collect()
            await sides[(r + i) % len(sides)]()


async def timed_calls(call: Callable[[], Awaitable[Any]], n: int, into: list[float]) -> None:
    """Await ``call()`` ``n`` times one after another, appending each latency to ``into``."""
    clock = time.perf_counter
    for _ in range(n):
        t = clock()
        await call()
        into.append(clock() - t)


def raw_params(path: str = RAW_SERVER) -> StdioServerParameters:
    """How the raw SDK spawns one of our benchmark servers."""
    return StdioServerParameters(command=sys.executable, args=[path])


def stdio_spec(name: str, path: str = RAW_SERVER, **kw: Any) -> mv.StdioSpec:
    """How mcpvisor spawns the same server."""
    kw.setdefault("timeouts", NO_PROBES)
    return mv.StdioSpec(name=name, command=sys.executable, args=[path], **kw)


@asynccontextmanager
async def raw_clients(servers: Sequence[Any]) -> AsyncIterator[list[Client]]:
    """Connected raw ``mcp.Client`` s, entered in order and exited in reverse by this task."""
    async with AsyncExitStack() as stack:
        clients = [await stack.enter_async_context(Client(s)) for s in servers]
        yield clients


@asynccontextmanager
async def raw_clients_concurrently(
    servers: Sequence[Any], *, list_tools: bool = False
) -> AsyncIterator[list[Client]]:
    """Raw clients connected all at once, each owned by its own task as the SDK requires;
    with ``list_tools``, each lists its server's tools before it counts as connected."""
    clients: list[Client | None] = [None] * len(servers)
    release = trio.Event()

    async def hold(i: int, *, task_status: trio.TaskStatus[None]) -> None:
        async with Client(servers[i]) as client:
            if list_tools:
                await client.list_tools()
            clients[i] = client
            task_status.started()
            await release.wait()

    async def start(nursery: trio.Nursery, i: int, started: list[int], done: trio.Event) -> None:
        await nursery.start(hold, i)
        started.append(i)
        if len(started) == len(servers):
            done.set()

    async with trio.open_nursery() as nursery:
        done, started = trio.Event(), list[int]()
        for i in range(len(servers)):
            nursery.start_soon(start, nursery, i, started, done)
        if servers:
            await done.wait()
        try:
            yield [c for c in clients if c is not None]
        finally:
            release.set()


@asynccontextmanager
async def bare_sessions(
    servers: Sequence[Any], *, negotiate: bool = False
) -> AsyncIterator[list[ClientSession]]:
    """Initialized bare ``ClientSession`` s under Trio, the peers' floor: an ``MCPServer`` over
    the SDK's in-memory streams, ``StdioServerParameters`` over ``stdio_client``.

    The peers call ``initialize()`` (the handshake era); with ``negotiate`` the session probes
    ``server/discover`` first as ``mcp.Client`` and the handle do, so it speaks their era (an
    MCPServer answers in 2026-07-28, which it serves more slowly than the handshake era)."""
    async with AsyncExitStack() as stack:
        sessions = []
        for server in servers:
            if isinstance(server, StdioServerParameters):
                read, write = await stack.enter_async_context(stdio_client(server))
            else:
                read, write = await stack.enter_async_context(InMemoryTransport(server))
            session = await stack.enter_async_context(ClientSession(read, write))
            if negotiate:
                await negotiate_auto(session)
            else:
                await session.initialize()
            sessions.append(session)
        yield sessions


async def channel_round_trips(n: int) -> list[float]:
    """``n`` bare Trio memory-channel round trips: send, receive in another task, reply
    through an event. The floor under any actor-style hop, measured in the same run."""
    clock = time.perf_counter
    samples: list[float] = []
    send, receive = trio.open_memory_channel[tuple[trio.Event, list[int]]](1)

    async def serve() -> None:
        async for done, box in receive:
            box.append(1)
            done.set()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(serve)
        for _ in range(n):
            t = clock()
            done, box = trio.Event(), list[int]()
            await send.send((done, box))
            await done.wait()
            samples.append(clock() - t)
        await send.aclose()
    return samples


ActorCall = Callable[[dict[str, Any]], Awaitable[Any]]


@asynccontextmanager
async def minimal_actor(client: Client) -> AsyncIterator[ActorCall]:
    """``client.call_tool`` behind the least an actor can be: a task that owns the client,
    a memory channel to it, and an event per reply. The floor of any actor-style hop inside
    a real call, where the bare round trip above runs with the caches warm."""
    send, receive = trio.open_memory_channel[tuple[dict[str, Any], trio.Event, list[Any]]](1)

    async def serve() -> None:
        async for args, done, box in receive:
            box.append(await client.call_tool("add", args))
            done.set()

    async def call(args: dict[str, Any]) -> Any:
        done, box = trio.Event(), list[Any]()
        await send.send((args, done, box))
        await done.wait()
        return box[0]

    async with trio.open_nursery() as nursery:
        nursery.start_soon(serve)
        try:
            yield call
        finally:
            await send.aclose()


@asynccontextmanager
async def minimal_actors(
    sessions: Sequence[ClientSession], tool: str, args: dict[str, Any], tasks: int
) -> AsyncIterator[Callable[[int], Awaitable[Any]]]:
    """``call(i)`` runs ``sessions[i].call_tool(tool, args)`` behind the least a concurrent
    actor can be: per session an unbounded memory channel, ``tasks`` serving tasks that take
    calls off it, and an event per reply. The floor of any actor-style hop in a burst, as
    :func:`minimal_actor` is for one call at a time."""
    Job = tuple[trio.Event, list[Any]]
    channels = [trio.open_memory_channel[Job](math.inf) for _ in sessions]

    async def serve(session: ClientSession, receive: trio.MemoryReceiveChannel[Job]) -> None:
        async for done, box in receive:
            box.append(await session.call_tool(tool, args))
            done.set()

    async def call(i: int) -> Any:
        done, box = trio.Event(), list[Any]()
        channels[i][0].send_nowait((done, box))
        await done.wait()
        return box[0]

    async with trio.open_nursery() as nursery:
        for session, (_, receive) in zip(sessions, channels, strict=True):
            for _ in range(tasks):
                nursery.start_soon(serve, session, receive)
        try:
            yield call
        finally:
            for send, _ in channels:
                send.close()


def text_of(result: Any) -> str:
    """The first text block of a ``CallToolResult``: checks that a call really answered."""
    return str(result.content[0].text)
