"""The package's layering, read from its source: no import cycles, and the library core never imports the bundle API.

Data flows one way (README "Architecture"): kernels -> layers -> networks -> bundles, with transforms, metrics, losses,
handlers, data and evaluation as leaves that bundles use.  The graph is built from every ``import`` statement of every
module, late imports inside functions included; an edge ``a -> b`` means that ``a`` uses ``b`` (edges to a module's
own parent packages are left out: those always run first).
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "monai_implicit"
CORE = ("kernels", "layers", "networks", "metrics", "transforms", "losses")


def _module_name(path: Path) -> str:
    parts = ("monai_implicit", *path.relative_to(PACKAGE).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _resolve(current: str, is_package: bool, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    base = current.split(".") if is_package else current.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _edges(name: str, path: Path) -> set[str]:
    """Modules of the package that a module imports anywhere in its source (``from pkg import mod`` counts
    ``pkg.mod``): a late import inside a function still ties the two modules together."""
    tree = ast.parse(path.read_text(), filename=str(path))
    targets: set[str] = set()
    for item in ast.walk(tree):
        if isinstance(item, ast.Import):
            targets.update(alias.name for alias in item.names)
        elif isinstance(item, ast.ImportFrom):
            base = _resolve(name, path.name == "__init__.py", item)
            submodules = {f"{base}.{alias.name}" for alias in item.names} & set(MODULES)
            targets.update(submodules or {base})  # `from pkg import mod` imports pkg.mod (pkg runs anyway)
    # a module's parent packages always run before it: an edge to one of them says nothing about the layering
    return {t for t in targets if t in MODULES and t != name and not name.startswith(t + ".")}


GRAPH = {name: _edges(name, path) for name, path in MODULES.items()}


def _cycle_from(start: str) -> list[str]:
    """A shortest import cycle through ``start`` (breadth first), or [] when there is none."""
    paths = {start: [start]}
    frontier = [start]
    while frontier:
        nxt = []
        for node in frontier:
            for target in sorted(GRAPH[node]):
                if target == start:
                    return paths[node] + [start]
                if target not in paths:
                    paths[target] = paths[node] + [target]
                    nxt.append(target)
        frontier = nxt
    return []


def test_graph_sees_the_known_edges():
    # the checker itself: edges that exist in the source must be found, or the tests below prove nothing
    assert "monai_implicit.kernels.grids" in GRAPH["monai_implicit.layers.implicit_conv"]
    assert "monai_implicit.layers.implicit_conv" in GRAPH["monai_implicit.layers"]
    assert any(t.startswith("monai_implicit.layers") for t in GRAPH["monai_implicit.networks.nets.hyperunet"])


def test_no_import_cycles():
    cycles = {tuple(c) for name in GRAPH if (c := _cycle_from(name))}
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(c) for c in sorted(cycles))


@pytest.mark.parametrize("layer", CORE)
def test_core_does_not_import_bundles_or_apps(layer):
    prefix = f"monai_implicit.{layer}"
    offenders = {
        (name, target)
        for name, targets in GRAPH.items()
        if name == prefix or name.startswith(prefix + ".")
        for target in targets
        if target.startswith(("monai_implicit.bundles", "monai_implicit.apps"))
    }
    assert not offenders, offenders
    for path in (p for n, p in MODULES.items() if n == prefix or n.startswith(prefix + ".")):
        text = path.read_text()
        assert "monai_implicit.bundles" not in text.replace("monai_implicit.bundles`", ""), path


def test_kernels_and_layers_do_not_import_networks():
    for name, targets in GRAPH.items():
        if name.startswith(("monai_implicit.kernels", "monai_implicit.layers")):
            assert not {t for t in targets if t.startswith("monai_implicit.networks")}, name


def test_public_names_import_from_their_package():
    """Every name a subpackage lists in ``__all__`` is importable from it (what the docstrings tell users to use)."""
    for name in MODULES:
        module = importlib.import_module(name)
        for public in getattr(module, "__all__", []):
            assert hasattr(module, public), f"{name}.__all__ lists {public!r}, which it does not define"
