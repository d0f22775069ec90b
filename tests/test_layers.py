"""The package layers hold (docs/architecture.md): imports point one way, games <- search <-
selfplay -> export, nothing below the command line imports it, and no two modules import each
other. Every import counts, those inside functions too."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("games", "search", "selfplay", "export")
#: What each package may import of ours.
ALLOWED = {
    "games": {"games"},
    "search": {"games", "search"},
    "export": {"games", "search", "export"},
    "selfplay": {"games", "search", "selfplay", "export"},
}


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, name: str, known: set[str]) -> set[str]:
    """The modules of ours that ``path`` (module ``name``) imports, as their full names."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parts + ([base] if base else []))
            found.add(base)
            found.update(f"{base}.{a.name}" for a in node.names)  # `from pkg import module`
    return {m for m in found if m in known and m != name}


def _graph() -> dict[str, set[str]]:
    paths = {_module_name(p): p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py")}
    known = set(paths)
    return {name: _imports(path, name, known) for name, path in paths.items()}


GRAPH = _graph()


def test_the_import_graph_was_read():
    assert "selfplay.training.trainer" in GRAPH and "search.api" in GRAPH["selfplay.training.actor"] | {
        d for m in GRAPH["selfplay.training.actor"] for d in GRAPH[m]
    }


@pytest.mark.parametrize("package", PACKAGES)
def test_imports_point_one_way(package):
    wrong = sorted(
        f"{name} imports {dep}"
        for name, deps in GRAPH.items() if name.split(".")[0] == package
        for dep in deps if dep.split(".")[0] not in ALLOWED[package]
    )  # fmt: skip
    assert not wrong, wrong


def test_nothing_below_the_command_line_imports_it():
    wrong = sorted(
        f"{name} imports {dep}"
        for name, deps in GRAPH.items() if not name.startswith("selfplay.tools") and name != "selfplay.__main__"
        for dep in deps if dep.startswith("selfplay.tools")
    )  # fmt: skip
    assert not wrong, wrong


def test_no_two_modules_import_each_other():
    pairs = sorted({tuple(sorted((a, b))) for a, deps in GRAPH.items() for b in deps if a in GRAPH[b]})
    assert not pairs, pairs


def test_the_checks_catch_a_cycle_and_an_upward_import(tmp_path):
    """The reader sees relative imports inside functions, the way the cycles it must catch were written."""
    pkg = tmp_path / "selfplay" / "training"
    pkg.mkdir(parents=True)
    (pkg / "a.py").write_text("def f():\n    from .b import g\n    from ..tools import cli\n")
    (pkg / "b.py").write_text("from . import a\n")
    known = {"selfplay.training.a", "selfplay.training.b", "selfplay.tools", "selfplay.tools.cli"}
    a = _imports(pkg / "a.py", "selfplay.training.a", known)
    b = _imports(pkg / "b.py", "selfplay.training.b", known)
    assert a == {"selfplay.training.b", "selfplay.tools", "selfplay.tools.cli"} and b == {"selfplay.training.a"}
