"""The benchmark harness runs end to end at tiny sizes, so it never rots.

It runs in a child process: the harness configures structlog as a host would, and that must
not leak into the rest of the suite. No assertion here is about time.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # bench/ is not part of the installed package
    sys.path.insert(0, str(ROOT))

from bench.harness import SCENARIOS, _parse  # noqa: E402


def test_every_scenario_runs_at_tiny_size(tmp_path: Path) -> None:
    out = tmp_path / "results.md"
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "COLUMNS": "200"},
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    text = out.read_text()
    assert "the scenario raised" not in text
    for number in SCENARIOS:
        assert f"\n## {number}. " in text, f"scenario {number} is missing from the results"
    summary = text.split("## Summary", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in summary.splitlines() if line.startswith("| ") and "---" not in line]
    assert len(rows) == len(SCENARIOS) + 1  # the header, then one row per scenario
    for row in rows[1:]:
        cells = [c.strip() for c in row.strip("|").split("|")]
        assert cells[3] not in ("-", "nan", "inf"), f"no figure in {row}"
        assert cells[5] in ("yes", "**no**")


def test_only_and_out_choose_what_runs(tmp_path: Path) -> None:
    args = _parse(["--quick", "--only", "7,1", "--out", str(tmp_path / "r.md")])
    assert args.only == [7, 1]
    assert args.quick
    assert args.out == tmp_path / "r.md"
    assert _parse([]).only == sorted(SCENARIOS)
