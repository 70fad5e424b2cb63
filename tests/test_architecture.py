"""The package's shape, checked: import layers without cycles, and modules of one job each."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "django_async_reports"

#: Modules allowed past ~400 lines, with the reason docs/architecture.md gives.
LONG_MODULES = {
    "writers/pdf.py": "one cohesive format: layout, figures, charts and the preview table",
    "models.py": "Django's one models module: five models and their querysets",
}
MAX_LINES = 420


def test_import_layers_hold():
    """lint-imports: the layers contract (no cycles) and Celery only at the edge."""
    lint_imports = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    assert lint_imports, "import-linter is a test dependency (pip install -e '.[test]')"
    result = subprocess.run([lint_imports], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Contracts: 2 kept, 0 broken." in result.stdout, result.stdout


def test_no_module_grows_past_its_job():
    sizes = {
        str(path.relative_to(PACKAGE)): len(path.read_text().splitlines())
        for path in PACKAGE.rglob("*.py")
        if "migrations" not in path.parts
    }
    too_long = {
        name: lines
        for name, lines in sizes.items()
        if lines > MAX_LINES and name not in LONG_MODULES
    }
    assert too_long == {}, "split these, or explain them in docs/architecture.md"


def test_domain_never_imports_the_task_module():
    """Tasks are sent by name (routing.send_task); only entry points import tasks.py."""
    # testing.py is an entry point too: a host's test applies the generation task in-process.
    allowed = {"apps.py", "tasks.py", "part_tasks.py", "testing.py"}
    importers = []
    for path in PACKAGE.rglob("*.py"):
        name = str(path.relative_to(PACKAGE))
        if name in allowed or "migrations" in path.parts:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.ImportFrom)
                and node.module
                and (node.module.endswith("tasks") or any(a.name == "tasks" for a in node.names))
            ):
                importers.append(name)
    assert importers == []


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _internal_imports(path: Path, module: str) -> set[str]:
    """Modules of the package ``module`` imports, at any depth of its code (lazy ones too)."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            names = [base, *(f"{base}.{alias.name}" for alias in node.names)]
        else:
            continue
        found.update(n for n in names if n.startswith("django_async_reports"))
    return found


def test_no_import_cycles_even_through_function_level_imports():
    """Layers alone would allow a cycle inside one package; none is hidden in a function."""
    modules = {
        _module_name(path): path for path in PACKAGE.rglob("*.py") if "migrations" not in path.parts
    }
    graph = {
        name: {target for target in _internal_imports(path, name) if target in modules} - {name}
        for name, path in modules.items()
    }
    # A package's __init__ re-exporting its own modules is not a cycle of code.
    for name in graph:
        graph[name] = {t for t in graph[name] if not name.startswith(t + ".")}

    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(node: str) -> None:  # Tarjan's strongly connected components
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in graph[node]:
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for name in sorted(graph):
        if name not in index:
            visit(name)
    assert cycles == []
