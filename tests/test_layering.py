"""Imports flow specs <- workers <- supervisor <- the shells, never backwards.

Checked on the source (every ``import`` statement, those under ``TYPE_CHECKING`` included),
so a backward import fails here before it can become a circle at run time.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "mcpvisor"
LAYERS = {"specs": 0, "workers": 1, "supervisor": 2}
SHELL = 3


def _layer(module: str) -> int | None:
    parts = module.split(".")
    if parts[0] != "mcpvisor":
        return None
    if len(parts) == 1:
        return SHELL  # the package root re-exports everything: only shells may use it
    return LAYERS.get(parts[1], SHELL)


def _imports(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
    return found


def test_no_module_imports_a_layer_above_its_own() -> None:
    backwards = []
    for path in sorted(PACKAGE.rglob("*.py")):
        module = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        module = module.removesuffix(".__init__")
        own = _layer(module)
        assert own is not None
        if module == "mcpvisor":
            continue
        for line, target in _imports(path):
            theirs = _layer(target)
            if theirs is not None and theirs > own:
                backwards.append(f"{path.relative_to(PACKAGE.parent)}:{line} imports {target}")
    assert backwards == []


def test_the_layers_are_where_the_test_looks() -> None:
    for name in LAYERS:
        assert (PACKAGE / name / "__init__.py").is_file()
