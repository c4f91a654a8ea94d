"""The lifecycle core's table, its diagram, and its isolation from Trio and the SDK."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from mcpvisor.supervisor import lifecycle
from mcpvisor.supervisor.lifecycle import EDGES, TRANSITIONS, ServerState, render_diagram

ROOT = Path(__file__).resolve().parents[2]
CORE_FILES = [
    ROOT / "mcpvisor/supervisor/lifecycle.py",
    ROOT / "mcpvisor/supervisor/_lifecycle_model.py",
]
START, END = "<!-- lifecycle-diagram:start -->", "<!-- lifecycle-diagram:end -->"


def test_transitions_is_derived_from_the_edges() -> None:
    assert set(TRANSITIONS) == {None, *ServerState}
    pairs = {(old, new) for old, news in TRANSITIONS.items() for new in news}
    assert pairs == set(EDGES)
    assert all(EDGES.values())
    assert None not in TRANSITIONS[None]


def test_the_diagram_draws_every_edge_once() -> None:
    text = render_diagram()
    lines = text.splitlines()
    assert lines[:2] == ["```mermaid", "stateDiagram-v2"] and lines[-1] == "```"
    arrows = [line.strip() for line in lines[2:-1]]
    assert len(arrows) == len(EDGES)
    for (old, new), reasons in EDGES.items():
        src = "[*]" if old is None else old.value
        dst = "[*]" if new is None else new.value
        assert f"{src} --> {dst}: {', '.join(sorted(reasons))}" in arrows


def test_architecture_md_shows_the_current_diagram() -> None:
    text = (ROOT / "ARCHITECTURE.md").read_text()
    assert START in text and END in text, "ARCHITECTURE.md lacks the lifecycle-diagram markers"
    block = text.split(START, 1)[1].split(END, 1)[0]
    assert block.strip() == render_diagram().strip(), (
        "ARCHITECTURE.md's lifecycle diagram is out of date; paste render_diagram()'s output"
    )


def _imported_modules(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
    return found


def test_the_core_imports_only_the_standard_library_attrs_and_specs() -> None:
    for path in CORE_FILES:
        for module in _imported_modules(path):
            top = module.split(".")[0]
            ok = (
                top in sys.stdlib_module_names
                or top == "attrs"
                or module.startswith(("mcpvisor.specs", "mcpvisor.supervisor._lifecycle"))
            )
            assert ok, f"{path.name} imports {module}"
    assert lifecycle.__file__ is not None


def test_importing_the_core_loads_neither_trio_nor_mcp() -> None:
    # Stand-in parent packages, so that the lead's package __init__ files (which import the
    # runtime) do not count against the core.
    script = f"""
import sys, types
for name, path in [("mcpvisor", {str(ROOT / "mcpvisor")!r}),
                   ("mcpvisor.supervisor", {str(ROOT / "mcpvisor/supervisor")!r})]:
    module = types.ModuleType(name)
    module.__path__ = [path]
    sys.modules[name] = module
import mcpvisor.supervisor.lifecycle
loaded = sorted(m for m in sys.modules if m.split(".")[0] in ("trio", "mcp", "anyio"))
print(",".join(loaded))
"""
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, cwd=ROOT
    )
    assert out.stdout.strip() == ""
