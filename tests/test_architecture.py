"""The layering of the package, enforced: no import of another package's private module, no import cycle between
modules, no package importing a layer above it (even lazily, inside a function), no module over 600 lines.
docs/architecture.md draws the same layers."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "rnnscope"
# Lower layers never import higher ones. Packages on one layer do not import each other.
LAYERS = [
    {"errors"},
    {"_validation", "_loss"},
    {"tasks"},
    {"models"},
    {"io"},
    {"training"},
    {"analysis"},
    {"design", "data"},
    {"plots"},
    {"report", "sweep"},
    {"_cli_common"},
    {"_cli_analysis", "_cli_data", "_cli_lineage", "_cli_perturb", "_cli_reproduce", "_cli_sweep", "_cli_universality"},
    {"cli"},
]
MAX_LINES = 600


def _modules() -> dict[str, Path]:
    out = {}
    for path in sorted(SRC.rglob("*.py")):
        parts = path.relative_to(SRC.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path
    return out


MODULES = _modules()


def _package(module: str) -> str:
    """The top-level subpackage of ``rnnscope.X.y`` (``X``), or the module itself for ``rnnscope.cli``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def _imports(path: Path, module: str) -> list[tuple[str, int, bool]]:
    """(imported rnnscope module, line, at module level) for every import in ``path``."""
    tree = ast.parse(path.read_text())
    top_level = {id(node) for node in tree.body}
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                stem = ".".join(base + ([node.module] if node.module else []))
            else:
                stem = node.module or ""
            names = [stem] + [f"{stem}.{alias.name}" for alias in node.names]
        else:
            continue
        for name in names:
            if name.startswith("rnnscope") and name in MODULES:
                found.append((name, node.lineno, id(node) in top_level))
    return found


def _layer(package: str) -> int:
    for index, layer in enumerate(LAYERS):
        if package in layer:
            return index
    raise AssertionError(f"package {package!r} is in no layer of tests/test_architecture.py: add it")


def test_every_package_has_a_layer() -> None:
    for module in MODULES:
        if module != "rnnscope":
            _layer(_package(module))


def test_no_private_module_of_another_package_is_imported() -> None:
    bad = []
    for module, path in MODULES.items():
        for target, line, _ in _imports(path, module):
            private = [part for part in target.split(".")[2:] if part.startswith("_")]
            if private and _package(target) != _package(module):
                bad.append(f"{path.relative_to(SRC.parent)}:{line} imports {target}")
    assert not bad, "cross-package private imports:\n" + "\n".join(bad)


def test_no_package_imports_a_higher_layer() -> None:
    bad = []
    for module, path in MODULES.items():
        if module == "rnnscope":
            continue
        own = _layer(_package(module))
        for target, line, _ in _imports(path, module):
            if target == "rnnscope" or _package(target) == _package(module):
                continue
            if _layer(_package(target)) >= own:
                bad.append(f"{path.relative_to(SRC.parent)}:{line} ({_package(module)}) imports {target}")
    assert not bad, "imports that run upward or sideways:\n" + "\n".join(bad)


def test_no_import_cycle_between_modules() -> None:
    graph: dict[str, set[str]] = defaultdict(set)
    for module, path in MODULES.items():
        for target, _, top in _imports(path, module):
            if top and target != module:
                graph[module].add(target)
    state: dict[str, int] = {}
    cycles = []

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if nxt == "rnnscope":  # the top-level package only holds the version
                continue
            if state.get(nxt) == 1:
                cycles.append(" -> ".join(stack[stack.index(nxt):] + [nxt]))
            elif nxt not in state:
                visit(nxt, stack)
        stack.pop()
        state[node] = 2

    for module in sorted(MODULES):
        if module not in state:
            visit(module, [])
    assert not cycles, "import cycles:\n" + "\n".join(cycles)


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_module_is_over_600_lines(module: str) -> None:
    lines = len(MODULES[module].read_text().splitlines())
    assert lines <= MAX_LINES, f"{MODULES[module].relative_to(SRC.parent)}: {lines} lines (at most {MAX_LINES})"
