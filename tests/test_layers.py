"""Imports point downwards only: a lower layer never imports a higher one (no cycles between packages)."""

import ast

import pytest

from tests.conftest import REPO

# Lower number = lower layer. A module may import its own layer and the ones below.
LAYERS = {"utils": 0, "data": 1, "eval": 1, "models": 2, "signals": 3, "methods": 4, "report": 5, "experiment": 6}
MODULES = sorted((REPO / "atlantis").rglob("*.py"))


def imported_packages(path):
    for node in ast.walk(ast.parse(path.read_text())):
        names = []
        if isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        for name in names:
            parts = name.split(".")
            if parts[0] == "atlantis" and len(parts) > 1:
                yield parts[1], node.lineno


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(REPO)))
def test_imports_point_downwards(path):
    layer = path.relative_to(REPO / "atlantis").parts[0]
    if layer not in LAYERS:
        return  # atlantis/__init__.py
    upward = [
        f"line {line}: atlantis.{package}"
        for package, line in imported_packages(path)
        if LAYERS.get(package, -1) > LAYERS[layer]
        or (package in LAYERS and package != layer and LAYERS[package] == LAYERS[layer])
    ]
    assert not upward, f"{path.relative_to(REPO)} imports a layer at or above its own: {upward}"
