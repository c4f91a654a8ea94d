"""Run the scenarios, print their table, write ``bench/results.md``.

Every scenario runs in its own ``trio.run`` so that one scenario's leftovers (tasks, memory,
children) cannot slow the next.
"""

from __future__ import annotations

import argparse
import cProfile
import datetime
import io
import logging
import os
import platform
import pstats
import subprocess
import sys
import time
import traceback
from collections.abc import Awaitable, Callable, Sequence
from importlib.metadata import version
from pathlib import Path

import attrs
import structlog
import trio
from rich.console import Console
from rich.table import Table

from bench.analysis import ANALYSIS
from bench.common import HERE, Config, Outcome
from bench.scenarios import aio as aio_scenario
from bench.scenarios import (
    crash,
    fanout,
    latency,
    listing,
    otel,
    per_request,
    scale,
    startup,
    throughput,
)
from bench.scenarios import gateway as gateway_scenarios

Scenario = Callable[[Config], Awaitable[Outcome]]

SCENARIOS: dict[int, Scenario] = {
    1: latency.inprocess,
    2: latency.stdio,
    3: throughput.concurrent,
    4: crash.detection,
    5: crash.recovery,
    6: startup.startup,
    7: listing.listing,
    8: per_request.per_request,
    9: scale.scale,
    10: fanout.fanout,
    11: otel.with_sdk,
    12: otel.without_sdk,
    13: aio_scenario.latency,
    14: gateway_scenarios.stdio,
    15: gateway_scenarios.http,
}


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench", description="mcpvisor's benchmarks: ours vs the reference."
    )
    parser.add_argument("--quick", action="store_true", help="tiny sizes (the smoke test)")
    parser.add_argument("--only", help="comma-separated scenario numbers, e.g. 1,2")
    parser.add_argument("--out", type=Path, default=HERE / "results.md", help="results file")
    parser.add_argument(
        "--profile", type=Path, help="write a cProfile of each scenario's run to this directory"
    )
    args = parser.parse_args(argv)
    if args.only:
        try:
            args.only = [int(x) for x in args.only.split(",") if x.strip()]
        except ValueError:
            parser.error("--only takes scenario numbers, e.g. --only 1,2")
        unknown = sorted(set(args.only) - set(SCENARIOS))
        if unknown:
            parser.error(f"no scenario {unknown}; there are 1..{max(SCENARIOS)}")
    else:
        args.only = sorted(SCENARIOS)
    return args


def quiet_logs() -> None:
    """The benchmark is a host: it keeps only errors, so printing is not timed.

    Standard logging too: with no handler on the root logger, the SDK's ``MCPServer``
    constructor installs a rich handler at INFO (``logging.basicConfig``), and httpx then
    renders a line per request inside the timed calls of scenario 15.
    """
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.ERROR))
    logging.basicConfig(level=logging.ERROR)


def run_one(number: int, cfg: Config, profile_dir: Path | None) -> Outcome:
    """One scenario in a fresh ``trio.run``, timed, and optionally profiled."""
    started = time.perf_counter()
    if profile_dir is None:
        outcome = trio.run(SCENARIOS[number], cfg)
    else:
        profile_dir.mkdir(parents=True, exist_ok=True)
        profiler = cProfile.Profile()
        outcome = profiler.runcall(trio.run, SCENARIOS[number], cfg)
        profiler.dump_stats(profile_dir / f"scenario{number}.prof")
        text = io.StringIO()
        pstats.Stats(profiler, stream=text).sort_stats("tottime").print_stats(40)
        (profile_dir / f"scenario{number}.txt").write_text(text.getvalue())
    elapsed = time.perf_counter() - started
    return attrs.evolve(outcome, seconds=elapsed)


def failed(number: int, error: BaseException, elapsed: float) -> Outcome:
    """A scenario that raised: reported as a missed goal with the error, the run goes on."""
    detail = "".join(traceback.format_exception_only(type(error), error)).strip()
    return Outcome(
        number,
        SCENARIOS[number].__doc__ or f"scenario {number}",
        (),
        "-",
        float("nan"),
        "-",
        False,
        (f"the scenario raised: {detail}",),
        elapsed,
    )


def machine() -> dict[str, str]:
    """What the numbers were measured on."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            cwd=HERE,
            check=False,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "mcpvisor"],
            capture_output=True,
            text=True,
            cwd=HERE.parent,
            check=False,
        ).stdout.strip()
    except OSError:
        commit, dirty = "", ""
    if dirty:
        commit += " plus uncommitted changes in mcpvisor/"
    return {
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cores": str(os.cpu_count()),
        "cpu": cpu,
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "mcp": version("mcp"),
        "trio": version("trio"),
        "mcpvisor": f"{version('mcpvisor')} ({commit or 'unknown commit'})",
        "load average at the end (1/5/15 min)": ", ".join(f"{x:.2f}" for x in os.getloadavg()),
    }


def _figure(value: float) -> str:
    if value != value:
        return "-"
    if value >= 100:
        return f"{value:,.0f}"
    return f"{value:.3f}" if value < 10 else f"{value:.1f}"


def table(outcomes: Sequence[Outcome]) -> Table:
    """The console summary: every series' median and p99, every figure against its goal."""
    t = Table(title="mcpvisor benchmarks")
    for col in ("#", "scenario", "series", "median", "p99", "n", "figure", "goal", "met"):
        t.add_column(col, justify="right" if col in ("median", "p99", "n") else "left")
    for o in outcomes:
        verdict = "[green]yes[/]" if o.met else "[red]NO[/]"
        rows = o.series or ()
        if not rows:
            t.add_row(str(o.number), o.title, "-", "-", "-", "-", o.figure, o.goal, verdict)
        for i, s in enumerate(rows):
            first = i == 0
            t.add_row(
                str(o.number) if first else "",
                o.title if first else "",
                s.label,
                s.show(s.median),
                s.show(s.p99),
                str(len(s.samples)),
                f"{o.figure} = {_figure(o.value)}" if first else "",
                o.goal if first else "",
                verdict if first else "",
                end_section=i == len(rows) - 1,
            )
    return t


def markdown(outcomes: Sequence[Outcome], info: dict[str, str], cfg: Config, total: float) -> str:
    """``bench/results.md``: the machine, the summary against the goals, then each scenario."""
    out = ["# mcpvisor benchmark results", ""]
    out.append(
        "Generated by `uv run python -m bench`"
        + (" --quick (tiny sizes: not a measurement)" if cfg.quick else "")
        + f" in {total:.0f} s. Every figure is a ratio of two sides measured in the same run "
        "on the same servers, taking turns in rounds, except where the goal is absolute."
    )
    out += ["", "| | |", "|---|---|"]
    out += [f"| {k} | {v} |" for k, v in info.items()]
    out += ["", "## Summary", ""]
    out += ["| # | scenario | figure | value | goal | met |", "|---|---|---|---|---|---|"]
    for o in outcomes:
        met = "yes" if o.met else "**no**"
        out.append(
            f"| {o.number} | {o.title} | {o.figure} | {_figure(o.value)} | {o.goal} | {met} |"
        )
    for o in outcomes:
        out += ["", f"## {o.number}. {o.title}", ""]
        if o.series:
            out += ["| series | median | p99 | n |", "|---|---|---|---|"]
            out += [
                f"| {s.label} | {s.show(s.median)} | {s.show(s.p99)} | {len(s.samples)} |"
                for s in o.series
            ]
            out.append("")
        verdict = "met" if o.met else "**not met**"
        out.append(f"**{o.figure} = {_figure(o.value)}**; goal {o.goal}: {verdict}.")
        out += [""] + [f"- {note}" for note in o.notes]
        out.append(f"- the scenario took {o.seconds:.1f} s")
        if o.number in ANALYSIS:
            out += ["", ANALYSIS[o.number].strip()]
    return "\n".join(out) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    """Run the chosen scenarios; returns 1 if any of them raised, else 0."""
    args = _parse(argv)
    cfg = Config(quick=args.quick)
    quiet_logs()
    console = Console(width=max(140, Console().width))
    outcomes: list[Outcome] = []
    started = time.perf_counter()
    crashed = False
    for number in args.only:
        console.print(f"[dim]scenario {number}...[/]", end=" ")
        t = time.perf_counter()
        try:
            outcome = run_one(number, cfg, args.profile)
        except Exception as error:
            crashed = True
            outcome = failed(number, error, time.perf_counter() - t)
            console.print(f"[red]raised[/] {outcome.notes[0]}")
        else:
            console.print(f"{outcome.seconds:.1f} s")
        outcomes.append(outcome)
    total = time.perf_counter() - started
    console.print(table(outcomes))
    args.out.write_text(markdown(outcomes, machine(), cfg, total))
    console.print(f"wrote {args.out} ({total:.0f} s)")
    return 1 if crashed else 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
