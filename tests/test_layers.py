"""Layers point one way: shared structures at the bottom, ROS on top (module imports)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "vis_node"

FORBIDDEN: dict[str, tuple[str, ...]] = {
    "structures": ("io", "perception", "tracking", "evaluation", "synth", "training",
                   "pipeline", "replay", "ros"),
    "io": ("perception", "tracking", "evaluation", "training", "pipeline", "replay", "ros"),
    "perception": ("tracking", "evaluation", "pipeline", "replay", "ros"),
    "tracking": ("perception", "training", "pipeline", "replay", "ros"),
    "evaluation": ("perception", "training", "pipeline", "replay", "ros"),
    "pipeline": ("replay", "ros"),
}
"""Package -> the sibling packages it must not import (directly, at any depth)."""


def _imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return names


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_package_imports_nothing_above_it(package: str) -> None:
    offenders = [
        f"{path.relative_to(PACKAGE)} imports {name}"
        for path in sorted((PACKAGE / package).rglob("*.py"))
        for name in _imports(path)
        if any(name == f"vis_node.{above}" or name.startswith(f"vis_node.{above}.")
               for above in FORBIDDEN[package])
    ]
    assert not offenders, offenders


FOUNDATION = ("registry.py", "resources.py", "settings.py")
"""Top-level modules every layer may import: they import nothing of vis_node."""


@pytest.mark.parametrize("module", FOUNDATION)
def test_foundation_modules_import_nothing_of_vis_node(module: str) -> None:
    names = _imports(PACKAGE / module)
    assert not [n for n in names if n == "vis_node" or n.startswith("vis_node.")], names
