"""The shape of the package, checked from the source: imports only point down, no cycles, no pickle.

Every ``import`` statement counts, also those inside functions (a lazy import is still a
dependency). Layers, bottom up: ``legwatch.contracts`` and ``legwatch.files``; ``detector`` (pure)
and ``legwatch.mqtt``; ``collector`` and ``legwatch.storage``; ``legwatch.monitor``; the
application (the rest of ``legwatch``). ``simnights`` and ``fieldnights`` (the second and third, independent
night generators) stand beside the detector and may use only its value types.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("legwatch", "detector", "collector", "simnights", "fieldnights")


def _modules() -> dict[str, Path]:
    out = {}
    for pkg in PACKAGES:
        for path in sorted((ROOT / pkg).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            out[".".join(parts)] = path
    return out


MODULES = _modules()


def _imports(name: str, path: Path) -> set[str]:
    """Every module of the repository that ``name`` imports (``from a import b`` counts as ``a.b``
    when that is a module, else as ``a``)."""
    tree = ast.parse(path.read_text())
    is_pkg = path.name == "__init__.py"
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".") if is_pkg else name.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                mod = ".".join([*base, node.module] if node.module else base)
            else:
                mod = node.module or ""
            targets = [f"{mod}.{a.name}" if f"{mod}.{a.name}" in MODULES else mod for a in node.names]
        else:
            continue
        for t in targets:
            while t and t not in MODULES:
                t = t.rpartition(".")[0]
            if t and t != name:
                found.add(t)
    return found


GRAPH = {name: _imports(name, path) for name, path in MODULES.items()}


def _within(module: str, *prefixes: str) -> bool:
    return any(module == p or module.startswith(p + ".") for p in prefixes)


def _importers(of: tuple[str, ...], allowed_from: tuple[str, ...]) -> list[tuple[str, str]]:
    """(importer, imported) pairs where a module outside ``allowed_from`` imports one of ``of``."""
    return [
        (m, dep) for m, deps in GRAPH.items() for dep in deps if _within(dep, *of) and not _within(m, *allowed_from)
    ]


def test_the_graph_is_read() -> None:
    assert "legwatch.monitor.service" in GRAPH and "detector.stream" in GRAPH["legwatch.monitor.router"]
    assert "legwatch.contracts.payload" in GRAPH["collector.pipeline"]


def test_detector_is_pure() -> None:
    bad = [(m, d) for m, deps in GRAPH.items() if _within(m, "detector") for d in deps if not _within(d, "detector")]
    assert bad == []


#: the independent night generators: they stand beside the detector and may use only its value types
GENERATORS = ("simnights", "fieldnights")


@pytest.mark.parametrize("package", GENERATORS)
def test_generators_use_only_the_value_types_of_the_detector(package: str) -> None:
    """An independent generator imports nothing of the project but ``detector.synthetic``'s ``Night`` and
    ``TruthEvent`` and ``detector.events.KINDS_COUNTED`` (it must not be shaped by the detector's code)."""
    allowed = {
        ("detector.synthetic", "Night"),
        ("detector.synthetic", "TruthEvent"),
        ("detector.events", "KINDS_COUNTED"),
    }
    libs = _GENERATOR_LIBS | {package}
    assert any(_within(m, package) for m in MODULES)
    bad = []
    for m, path in MODULES.items():
        if not _within(m, package):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                bad += [(m, a.name) for a in node.names if a.name.split(".")[0] not in libs]
            elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
                top = node.module.split(".")[0]
                if top in {"legwatch", "detector", "collector"}:
                    bad += [(m, f"{node.module}.{a.name}") for a in node.names if (node.module, a.name) not in allowed]
                elif top not in libs:
                    bad.append((m, node.module))
    assert bad == []
    users = [m for m, deps in GRAPH.items() if not _within(m, package) and any(_within(d, package) for d in deps)]
    assert users == []  # and nothing of the package depends on it (benchmarks and tests may)


#: what a generator may import besides the three value types: numpy, scipy, itself and a little stdlib
_GENERATOR_LIBS = {
    "numpy",
    "scipy",
    "__future__",
    "math",
    "dataclasses",
    "collections",
    "typing",
    "functools",
    "bisect",
    "zlib",
}


def test_contracts_are_at_the_bottom() -> None:
    bad = [
        (m, d)
        for m, deps in GRAPH.items()
        if _within(m, "legwatch.contracts", "legwatch.files")
        for d in deps
        if not _within(d, "legwatch.contracts") and d != "legwatch"
    ]
    assert bad == []


def test_collector_stands_on_contracts_and_mqtt_only() -> None:
    bad = [
        (m, d)
        for m, deps in GRAPH.items()
        if _within(m, "collector")
        for d in deps
        if not _within(d, "collector", "legwatch.contracts", "legwatch.mqtt", "legwatch.files") and d != "legwatch"
    ]
    assert bad == []


def test_the_monitor_imports_nothing_of_the_application() -> None:
    allowed = (
        "legwatch.monitor",
        "legwatch.contracts",
        "legwatch.files",
        "legwatch.mqtt",
        "legwatch.storage",
        "detector",
    )
    bad = [
        (m, d)
        for m, deps in GRAPH.items()
        if _within(m, "legwatch.monitor")
        for d in deps
        if not _within(d, *allowed) and d not in ("legwatch", "legwatch.habits")
    ]
    assert bad == []


def test_lower_layers_do_not_import_the_application() -> None:
    lower = ("legwatch.contracts", "legwatch.files", "legwatch.mqtt", "legwatch.storage", "legwatch.monitor")
    lower += ("detector", "collector")
    app = [m for m in MODULES if _within(m, "legwatch") and not _within(m, *lower) and m != "legwatch"]
    # the habit rules are the one application module the monitor uses; they stand on storage alone
    app = [m for m in app if m != "legwatch.habits"]
    bad = [(m, d) for m, deps in GRAPH.items() if _within(m, *lower) for d in deps if d in app]
    assert bad == []
    assert all(
        _within(d, "legwatch.storage", "legwatch.contracts") or d == "legwatch" for d in GRAPH["legwatch.habits"]
    )


def test_no_import_cycle() -> None:
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    cycles: list[list[str]] = []

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in GRAPH[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                cycles.append(sorted(comp))

    for v in GRAPH:
        if v not in index:
            visit(v)
    assert cycles == []


def test_no_pickle_anywhere_in_the_package() -> None:
    users = [m for m, path in MODULES.items() if "pickle" in {n.split(".")[0] for n in _stdlib_imports(path)}]
    assert users == []


def _stdlib_imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            out.add(node.module)
    return out


def test_no_class_is_longer_than_about_400_lines() -> None:
    long = []
    for m, path in MODULES.items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef) and node.end_lineno - node.lineno + 1 > 400:
                long.append((m, node.name, node.end_lineno - node.lineno + 1))
    assert long == []


def test_every_folder_says_what_it_holds() -> None:
    for pkg in PACKAGES:
        for folder in [ROOT / pkg, *(p for p in (ROOT / pkg).rglob("*") if p.is_dir() and p.name != "__pycache__")]:
            init = folder / "__init__.py"
            doc = ast.get_docstring(ast.parse(init.read_text())) if init.exists() else None
            assert doc or (folder / "README.md").exists(), f"{folder} has no docstring or README"
