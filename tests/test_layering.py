"""The package's import layering, read from the source with ``ast`` (nothing is imported).

Floors, bottom to top; a module may import its own package and anything on a lower floor:

-1. ``safeio`` (the I/O policy for untrusted files: imports nothing from the project, and every
   reader and writer above goes through it)
0. ``tsslbp`` (the version), ``config``, ``configs`` (the shipped YAML files), ``hwmodels`` (which imports nothing from the project),
   ``manifest``, ``plots``, ``_malloc``
1. ``train``, ``data``, ``deploy`` (``train`` may import ``data``; nothing else crosses this floor)
2. ``export``
3. ``bench`` (times train, export and deploy code)
4. ``workflows``
5. ``cli`` and ``cli_options`` (its option vocabulary; ``__main__``, which runs it, above)

``lava`` is imported only inside ``deploy/``, and no chain of imports (at module level or inside
functions) leads from a module back to itself.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "tsslbp"

FLOORS = {
    "tsslbp.safeio": -1,
    "tsslbp": 0,
    "tsslbp.config": 0,
    "tsslbp.configs": 0,
    "tsslbp.hwmodels": 0,
    "tsslbp.manifest": 0,
    "tsslbp.plots": 0,
    "tsslbp._malloc": 0,
    "tsslbp.train": 1,
    "tsslbp.data": 1,
    "tsslbp.deploy": 1,
    "tsslbp.export": 2,
    "tsslbp.bench": 3,
    "tsslbp.workflows": 4,
    "tsslbp.cli": 5,
    "tsslbp.cli_options": 5,
    "tsslbp.__main__": 6,
}
# Imports allowed between packages on one floor.
SIDEWAYS = {("tsslbp.train", "tsslbp.data"), ("tsslbp.cli", "tsslbp.cli_options")}


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _is_package(name: str) -> bool:
    return MODULES[name].name == "__init__.py"


def _imports(name: str) -> set[str]:
    """Every module of the project or outside it that ``name`` imports, anywhere in its body."""
    tree = ast.parse(MODULES[name].read_text(), filename=str(MODULES[name]))
    here = name if _is_package(name) else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = here.rsplit(".", node.level - 1)[0] if node.level > 1 else here
                source = f"{base}.{node.module}" if node.module else base
            else:
                source = node.module or ""
            # `from pkg import mod` imports the module pkg.mod; `from mod import name` imports mod.
            submodules = {f"{source}.{a.name}" for a in node.names} & MODULES.keys()
            found.update(submodules or {source})
    return found


IMPORTS = {name: _imports(name) for name in MODULES}


def _unit(name: str) -> str:
    """The floor table's entry a module belongs to (its top-level package or module)."""
    parts = name.split(".")
    return ".".join(parts[:2])


def test_every_module_has_a_floor():
    missing = sorted({_unit(n) for n in MODULES} - FLOORS.keys())
    assert not missing, f"add these to FLOORS (and to the layering in the docs): {missing}"


@pytest.mark.parametrize("name", sorted(MODULES))
def test_imports_go_down_only(name):
    unit = _unit(name)
    wrong = []
    for target in sorted(t for t in IMPORTS[name] if t.split(".")[0] == "tsslbp"):
        other = _unit(target)
        if other == unit or (unit, other) in SIDEWAYS:
            continue
        if FLOORS[other] >= FLOORS[unit] and not (unit != "tsslbp" and other == "tsslbp"):
            wrong.append(f"{target} (floor {FLOORS[other]})")
    assert not wrong, f"{name} (floor {FLOORS[unit]}) imports upwards or sideways: {wrong}"


def test_hwmodels_imports_nothing_from_the_project():
    found = {
        f"{name} -> {target}"
        for name in MODULES
        if name.startswith("tsslbp.hwmodels")
        for target in IMPORTS[name]
        if target.startswith("tsslbp") and not target.startswith("tsslbp.hwmodels")
    }
    assert not found, sorted(found)


def test_lava_only_inside_deploy():
    found = {
        name
        for name in MODULES
        if not name.startswith("tsslbp.deploy")
        and any(t.split(".")[0] in ("lava", "lava_dl") for t in IMPORTS[name])
    }
    assert not found, f"modules outside tsslbp.deploy importing lava: {sorted(found)}"


def test_no_import_cycle():
    graph = {n: sorted(t for t in IMPORTS[n] if t in MODULES and t != n) for n in MODULES}
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in graph[node]:
            if state.get(nxt) == 1:
                return path[path.index(nxt) :] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (cycle := visit(start)):
            pytest.fail("import cycle: " + " -> ".join(cycle))


def test_every_module_declares_all():
    missing = [
        name
        for name, path in MODULES.items()
        if not any(
            isinstance(target, ast.Name) and target.id == "__all__"
            for node in ast.parse(path.read_text()).body
            if isinstance(node, (ast.Assign, ast.AnnAssign))
            for target in (node.targets if isinstance(node, ast.Assign) else [node.target])
        )
    ]
    assert not missing, f"modules without __all__: {missing}"


def test_the_parser_sees_known_edges():
    # Guards the test itself: relative, absolute and `from . import module` forms all resolve.
    assert "tsslbp.train.network" in IMPORTS["tsslbp.export.quantize"]
    assert "tsslbp.train.kernels" in IMPORTS["tsslbp.train.autograd"]
    assert "tsslbp.deploy.lava_compat" in IMPORTS["tsslbp.deploy"]
    assert "tsslbp" in IMPORTS["tsslbp.train.loop"]
