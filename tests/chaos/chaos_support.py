"""The chaos run: real servers under load while faults are injected, then the invariants.

:func:`run_chaos` supervises seven raw stdio servers (one transient, one with a tiny budget),
three ``MCPServer`` stdio servers and one streamable-HTTP server, keeps several callers sending
requests with deadlines, and injects seeded random faults for ``seconds``: SIGKILL, SIGSTOP
then SIGCONT (a hang the health probes must notice), a clean exit (code 0) through the raw
server's ``exit`` tool, and a kill-and-restart of the HTTP server on its port. It returns a
:class:`ChaosReport` holding what happened and every invariant that was broken; the test
asserts on it.

Resource checks: the open-fd count is compared with a baseline taken after a warm-up run in
the same process (the interpreter, trio and httpx create some fds lazily on first use, and
those stay open), with no slack; RSS is compared between the end of the warm-up period and
the end of the run, after a ``gc.collect()``, against :data:`RSS_GROWTH_LIMIT`.
"""

from __future__ import annotations

import gc
import math
import os
import random
import signal
import sys
from collections import Counter
from collections.abc import Callable
from typing import Any

import attrs
import trio
from mcp.shared.exceptions import MCPError

import mcpvisor as mv
from tests.conftest import MCP_SERVER, RAW_SERVER, live_descendants
from tests.supervisor.support import until
from tests.workers.worker_helpers import HttpServer, http_server

SUMMARIES: list[str] = []
"""One line per chaos run in this session; ``tests/chaos/conftest.py`` prints them at the end."""

DEADLINE_GRACE = 1.5
"""Seconds past its own deadline a request may take to resolve (scheduling on a busy box)."""

RSS_GROWTH_LIMIT = 48 * 1024 * 1024
"""Bytes the process may grow between the end of warm-up and the end of the run. Envelopes,
events or buffers kept per request would exceed it within seconds at this request rate."""

FAST_POLICY = mv.RestartPolicy(
    max_restarts=1000,
    within=60,
    reset_after=5,
    backoff=mv.Backoff(initial=0.05, max=0.5, jitter=0.5),
)
FRAGILE_POLICY = mv.RestartPolicy(
    max_restarts=1, within=3600, backoff=mv.Backoff(initial=0.05, max=0.5, jitter=0.5)
)
"""A budget the faults are expected to spend: the second crash drops the server."""

RAW_TIMEOUTS = mv.Timeouts(
    connect=10, initialize=20, request=5, shutdown=1, probe_interval=0.5, probe_timeout=0.5,
    probe_misses=2,
)  # fmt: skip
MCP_TIMEOUTS = mv.Timeouts(
    connect=10, initialize=20, request=5, shutdown=1, probe_interval=0.5, probe_timeout=1.0,
    probe_misses=2,
)  # fmt: skip
HTTP_TIMEOUTS = mv.Timeouts(
    connect=3, initialize=10, request=5, shutdown=1, probe_interval=0.5, probe_timeout=1.0,
    probe_misses=2,
)  # fmt: skip

RAW = ("r0", "r1", "r2", "r3", "r4")
TRANSIENT = "tr"
FRAGILE = "fragile"
MCP = ("m0", "m1", "m2")
HTTP = "h0"


def _raw(name: str, policy: mv.RestartPolicy) -> mv.StdioSpec:
    return mv.StdioSpec(
        name=name,
        command=sys.executable,
        args=(str(RAW_SERVER),),
        restart=policy,
        timeouts=RAW_TIMEOUTS,
    )


def chaos_spec(http_url: str) -> mv.SupervisorSpec:
    """The eleven servers of a chaos run."""
    servers: list[mv.ServerSpec] = [_raw(n, FAST_POLICY) for n in RAW]
    servers.append(_raw(TRANSIENT, attrs.evolve(FAST_POLICY, restart="transient")))
    servers.append(_raw(FRAGILE, FRAGILE_POLICY))
    servers += [
        mv.StdioSpec(
            name=n,
            command=sys.executable,
            args=(str(MCP_SERVER),),
            restart=FAST_POLICY,
            timeouts=MCP_TIMEOUTS,
        )
        for n in MCP
    ]
    servers.append(
        mv.HttpSpec(name=HTTP, url=http_url, restart=FAST_POLICY, timeouts=HTTP_TIMEOUTS)
    )
    return mv.SupervisorSpec(servers=servers)


def fd_count() -> int:
    return len(os.listdir("/proc/self/fd"))


def rss_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _is_our_child(pid: int) -> bool:
    """Whether ``pid`` is still a live child of this process (so it is safe to signal)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            raw = stat.read()
    except OSError:
        return False
    fields = raw[raw.rindex(")") + 2 :].split()
    return fields[0] != "Z" and int(fields[1]) == os.getpid()


FAULT_KINDS = ("sigkill", "sigstop", "clean_exit", "http_restart")
"""What the chaos run injects; a run injects each at least once."""


@attrs.define
class ChaosReport:
    """What a chaos run did and which invariants it broke (``violations`` must be empty)."""

    seed: int
    seconds: float
    requests: Counter[str] = attrs.Factory(Counter)
    faults: Counter[str] = attrs.Factory(Counter)
    restarts: dict[str, int] = attrs.Factory(dict)
    final: dict[str, str] = attrs.Factory(dict)
    violations: list[str] = attrs.Factory(list)
    leaked_processes: dict[int, str] = attrs.Factory(dict)
    fd_delta: int = 0
    rss_growth: int = 0
    worst_overrun: float = 0.0
    events: int = 0

    @property
    def leaks(self) -> int:
        return len(self.leaked_processes) + max(self.fd_delta, 0)

    def summary(self) -> str:
        outcomes = ", ".join(f"{k}={v}" for k, v in sorted(self.requests.items()))
        faults = ", ".join(f"{k}={v}" for k, v in sorted(self.faults.items()))
        return (
            f"chaos: {self.seconds:g}s seed={self.seed} "
            f"requests={sum(self.requests.values())} ({outcomes}) "
            f"faults={sum(self.faults.values())} ({faults}) "
            f"restarts={sum(self.restarts.values())} events={self.events} "
            f"leaks={self.leaks} (processes={len(self.leaked_processes)}, "
            f"fds={self.fd_delta:+d}, rss={self.rss_growth / 2**20:+.1f}MiB) "
            f"worst_overrun={self.worst_overrun:.2f}s violations={len(self.violations)}"
        )


def classify(outcome: object) -> str:
    """The outcome's name in the report, or ``""`` for an outcome that breaks the contract."""
    if isinstance(outcome, mv.MCPVisorError | MCPError):
        return type(outcome).__name__
    if isinstance(outcome, BaseException):
        return ""
    return "ok"


def _has_tools(result: Any) -> bool:
    return len(result.tools) > 0


def _echoes(text: str) -> Callable[[Any], bool]:
    return lambda result: bool(result.content[0].text == text)


def _adds_up(total: int) -> Callable[[Any], bool]:
    return lambda result: bool(result.structured_content == {"result": total})


class _Run:
    def __init__(self, report: ChaosReport, client: mv.SupervisorClient, http: HttpServer) -> None:
        self.report = report
        self.client = client
        self.http = http
        self.rng = random.Random(report.seed)
        self.events: list[mv.LifecycleEvent | mv.EventsLost] = []
        self.http_busy = False
        self.hangs = 0

    def violate(self, message: str) -> None:
        self.report.violations.append(message)

    async def record_events(self, events: mv.Subscription) -> None:
        async for event in events:
            self.events.append(event)

    # -- load

    async def caller(self, seed: int, stop: trio.Event) -> None:
        rng = random.Random(seed)
        names = [*RAW, TRANSIENT, FRAGILE, *MCP, HTTP]
        while not stop.is_set():
            name = rng.choice(names)
            timeout = rng.uniform(0.3, 3.0)
            op: Any
            expect: Callable[[Any], bool]
            if rng.random() < 0.2:
                op = self.client.request(name, "list_tools", timeout=timeout)
                expect = _has_tools
            elif name in RAW or name in (TRANSIENT, FRAGILE):
                text = f"{name}-{rng.randrange(10**6)}"
                op = self.client.call_tool(name, "echo", {"text": text}, timeout=timeout)
                expect = _echoes(text)
            else:
                a, b = rng.randrange(1000), rng.randrange(1000)
                op = self.client.call_tool(name, "add", {"a": a, "b": b}, timeout=timeout)
                expect = _adds_up(a + b)
            await self.one_request(name, timeout, op, expect)
            await trio.sleep(rng.uniform(0, 0.02))

    async def one_request(
        self, name: str, timeout: float, op: Any, expect: Callable[[Any], bool]
    ) -> None:
        start = trio.current_time()
        outcome: object = None
        with trio.move_on_after(timeout + DEADLINE_GRACE) as grace:
            try:
                outcome = await op
            except Exception as error:
                outcome = error
        elapsed = trio.current_time() - start
        self.report.worst_overrun = max(self.report.worst_overrun, elapsed - timeout)
        if grace.cancelled_caught:
            self.report.requests["unresolved"] += 1
            self.violate(f"a request to {name} did not resolve within {timeout:.2f}s + grace")
            return
        kind = classify(outcome)
        if not kind:
            self.report.requests["untyped"] += 1
            self.violate(f"a request to {name} raised an untyped error: {outcome!r}")
            return
        if kind == "ok" and not expect(outcome):
            self.report.requests["wrong_result"] += 1
            self.violate(f"a request to {name} got a wrong result: {outcome!r}")
            return
        self.report.requests[kind] += 1

    # -- faults

    def pid_of(self, name: str) -> int | None:
        server = self.client.status().servers[name]
        if server.state is not mv.ServerState.ACTIVE or server.pid is None:
            return None
        return server.pid if _is_our_child(server.pid) else None

    async def inject(self, seconds: float, nursery: trio.Nursery) -> None:
        end = trio.current_time() + seconds
        stdio = [*RAW, TRANSIENT, FRAGILE, *MCP]
        # Every kind the report names is injected at least once, whatever the seed: each is
        # owed until it lands (a target may be down when its turn comes), then the draw is free.
        owed = list(FAULT_KINDS)
        while trio.current_time() < end:
            await trio.sleep(self.rng.uniform(0.1, 0.6))
            owed = [k for k in owed if not self.report.faults[k]]
            if owed:
                kind = self.rng.choice(owed)
            else:
                kind = self.rng.choices(FAULT_KINDS, weights=[4, 2, 2, 1])[0]
            if kind == "http_restart":
                if not self.http_busy:
                    self.http_busy = True
                    self.report.faults[kind] += 1
                    nursery.start_soon(self.restart_http, self.rng.uniform(0.1, 1.5))
                continue
            if kind == "clean_exit":
                name = self.rng.choice([*RAW, TRANSIENT, FRAGILE])
                if self.pid_of(name) is not None:
                    self.report.faults[kind] += 1
                    nursery.start_soon(self.clean_exit, name)
                continue
            name = self.rng.choice(stdio)
            pid = self.pid_of(name)
            if pid is None:
                continue
            self.report.faults[kind] += 1
            if kind == "sigkill":
                os.kill(pid, signal.SIGKILL)
            else:
                nursery.start_soon(self.hang, pid, self.rng.uniform(0.2, 2.5))

    async def clean_exit(self, name: str) -> None:
        try:
            await self.client.call_tool(name, "exit", {"code": 0}, timeout=3)
        except (mv.RequestInterruptedError, mv.ServerUnavailableError, mv.RequestTimeoutError):
            return
        except Exception as error:
            self.violate(f"the exit tool of {name} raised an untyped error: {error!r}")
            return
        self.violate(f"the exit tool of {name} returned instead of ending the server")

    async def hang(self, pid: int, seconds: float) -> None:
        self.hangs += 1
        try:
            os.kill(pid, signal.SIGSTOP)
            await trio.sleep(seconds)
        finally:
            if _is_our_child(pid):
                os.kill(pid, signal.SIGCONT)
            self.hangs -= 1

    async def restart_http(self, down: float) -> None:
        port = self.http.port
        try:
            await self.http.kill()
            await trio.sleep(down)
            await self.http.start(port)
        finally:
            self.http_busy = False


def _restart_violations(
    events: list[mv.LifecycleEvent | mv.EventsLost], spec: mv.SupervisorSpec
) -> tuple[list[str], dict[str, int]]:
    """Restarts (entries into FAILED) per server, checked against each server's intensity."""
    problems: list[str] = []
    counts: dict[str, int] = {}
    for server in spec.servers:
        policy = server.restart
        times = [
            e.at
            for e in events
            if isinstance(e, mv.LifecycleEvent)
            and e.kind == "state"
            and e.server == server.name
            and e.new is mv.ServerState.FAILED
        ]
        counts[server.name] = len(times)
        for i, at in enumerate(times):
            window = [t for t in times[: i + 1] if at - t <= policy.within]
            if len(window) > policy.max_restarts:
                problems.append(
                    f"{server.name} made {len(window)} restarts within {policy.within:g}s "
                    f"(max_restarts={policy.max_restarts})"
                )
                break
    return problems, counts


async def _warm_up(http_url: str) -> None:
    """Touch every code path once so that lazily created fds exist before the baseline."""
    spec = mv.SupervisorSpec(
        servers=[
            _raw("warm", FAST_POLICY),
            mv.HttpSpec(name="warmhttp", url=http_url, restart=FAST_POLICY, timeouts=HTTP_TIMEOUTS),
        ]
    )
    async with mv.open_supervisor(spec) as client:
        await client.call_tool("warm", "echo", {"text": "x"})
        await client.call_tool("warmhttp", "add", {"a": 1, "b": 2})
        pid = client.status().servers["warm"].pid
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        await until(
            client, lambda s: s.servers["warm"].restarts == 1 and s.active == ["warm", "warmhttp"]
        )


def _settled(status: mv.SupervisorStatus) -> bool:
    """Every server that can serve is serving: only the two expected ones may be down."""
    for name, server in status.servers.items():
        if server.state is mv.ServerState.ACTIVE:
            continue
        if name == FRAGILE and server.state is mv.ServerState.DROPPED:
            continue
        if name == TRANSIENT and server.state is mv.ServerState.STOPPED:
            continue
        return False
    return True


async def run_chaos(seconds: float, seed: int, *, callers: int = 6) -> ChaosReport:
    """Run the chaos scenario for ``seconds`` of faults; see the module docstring."""
    report = ChaosReport(seed=seed, seconds=seconds)
    processes_before = set(live_descendants())
    async with http_server(MCP_SERVER, "streamable-http") as http:
        await _warm_up(http.url)
        gc.collect()
        fds_before = fd_count()
        spec = chaos_spec(http.url)
        async with mv.open_supervisor(spec, rng=random.Random(seed)) as client:
            run = _Run(report, client, http)
            async with client.subscribe(buffer=10**7) as events, trio.open_nursery() as outer:
                outer.start_soon(run.record_events, events)
                stop = trio.Event()
                async with trio.open_nursery() as load:
                    for i in range(callers):
                        load.start_soon(run.caller, seed * 1000 + i, stop)
                    warm = max(2.0, min(10.0, seconds / 4))
                    await trio.sleep(warm)
                    gc.collect()
                    rss_warm = rss_bytes()
                    async with trio.open_nursery() as faults:
                        await run.inject(max(0.0, seconds - warm), faults)
                    stop.set()
                if run.http.process is None or run.http.process.returncode is not None:
                    await run.http.start(run.http.port)
                status = await until(client, _settled)
                # Every server that settled ACTIVE serves again.
                for name in status.active:
                    await run.one_request(
                        name,
                        10.0,
                        client.request(name, "list_tools", timeout=10.0),
                        _has_tools,
                    )
                gc.collect()
                report.rss_growth = rss_bytes() - rss_warm
                outer.cancel_scope.cancel()
            report.final = {n: s.state.value for n, s in status.servers.items()}
            report.events = len(run.events)
            if any(isinstance(e, mv.EventsLost) for e in run.events):
                report.violations.append("the recording subscriber lost events")
            problems, report.restarts = _restart_violations(run.events, spec)
            report.violations += problems
            for name, server in status.servers.items():
                if server.restarts != report.restarts[name]:
                    report.violations.append(
                        f"{name}: status says {server.restarts} restarts, events say "
                        f"{report.restarts[name]}"
                    )
            dropped = status.servers[FRAGILE].state is mv.ServerState.DROPPED
            if dropped and report.restarts[FRAGILE] != FRAGILE_POLICY.max_restarts:
                report.violations.append("fragile was dropped before its budget was spent")
            for name in (*RAW, *MCP, HTTP):
                if status.servers[name].state is not mv.ServerState.ACTIVE:
                    report.violations.append(f"{name} did not come back")
        gc.collect()
        report.fd_delta = fd_count() - fds_before
    report.leaked_processes = {
        pid: cmd for pid, cmd in live_descendants().items() if pid not in processes_before
    }
    if report.leaked_processes:
        report.violations.append(f"processes outlived the run: {report.leaked_processes}")
    if report.fd_delta > 0:
        report.violations.append(f"{report.fd_delta} file descriptors outlived the run")
    if report.rss_growth > RSS_GROWTH_LIMIT:
        report.violations.append(f"RSS grew by {report.rss_growth / 2**20:.1f} MiB")
    assert math.isfinite(report.worst_overrun)
    return report
