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
    allowed = {"apps.py", "tasks.py"}
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
