"""Readers of the deployment files (example_project/deploy/) and of what they must match.

Used by ``tests/test_deploy_files.py``: the Compose file with its variables
interpolated as Compose does, the Kubernetes manifests, the commands and images
that docs/deployment.md lists, and the environment variables, queue names and
health URL that the example project and the package define.
"""

from __future__ import annotations

import ast
import re
import shlex
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "example_project" / "deploy"
COMPOSE_FILE = DEPLOY / "docker-compose.yml"
DOCKERFILE = DEPLOY / "Dockerfile"
KUBERNETES = DEPLOY / "kubernetes"
SETTINGS = ROOT / "example_project" / "config" / "settings.py"
EXAMPLE_URLS = ROOT / "example_project" / "config" / "urls.py"
DEPLOYMENT_DOC = ROOT / "docs" / "deployment.md"


# -- Compose ------------------------------------------------------------------------

# What Compose replaces in a value: `$$` (a literal `$`) and `${NAME:-default}`, the only
# forms the file uses; any other `$` is an error here, so a typo cannot pass unseen.
_VARIABLE = re.compile(r"\$\$|\$\{([A-Z_][A-Z0-9_]*):-([^}]*)\}|\$")


def _interpolate(value: Any) -> Any:
    """``value`` with every variable replaced by its default, as a bare ``up`` runs it."""
    if isinstance(value, dict):
        return {key: _interpolate(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_interpolate(item) for item in value]
    if not isinstance(value, str):
        return value

    def replace(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        if match.group(1) is None:
            raise ValueError(f"write `$$` or `${{NAME:-default}}`, not a bare `$`: {value!r}")
        return match.group(2)

    return _VARIABLE.sub(replace, value)


def compose_raw() -> dict[str, Any]:
    """The Compose file as written (YAML anchors and merge keys resolved)."""
    return yaml.safe_load(COMPOSE_FILE.read_text())


def compose() -> dict[str, Any]:
    """The Compose file with its variables at their defaults."""
    return _interpolate(compose_raw())


# -- Kubernetes ---------------------------------------------------------------------


def manifests() -> list[tuple[str, dict[str, Any]]]:
    """Every object of kubernetes/*.yaml, with the name of its file."""
    return [
        (path.name, document)
        for path in sorted(KUBERNETES.glob("*.yaml"))
        for document in yaml.safe_load_all(path.read_text())
        if document
    ]


def objects(kind: str) -> list[dict[str, Any]]:
    return [document for _, document in manifests() if document["kind"] == kind]


def containers(document: dict[str, Any]) -> list[dict[str, Any]]:
    """The containers of a Deployment or a Job (none for other kinds)."""
    if document["kind"] not in {"Deployment", "Job"}:
        return []
    return document["spec"]["template"]["spec"]["containers"]


def container_environment(container: dict[str, Any]) -> set[str]:
    """The variables a container gets: its ``env`` and its ConfigMaps' and Secrets' keys."""
    names = {item["name"] for item in container.get("env", [])}
    sources = {("ConfigMap", obj["metadata"]["name"]): obj for obj in objects("ConfigMap")}
    sources |= {("Secret", obj["metadata"]["name"]): obj for obj in objects("Secret")}
    for source in container.get("envFrom", []):
        kind = "ConfigMap" if "configMapRef" in source else "Secret"
        ref = source.get("configMapRef") or source["secretRef"]
        obj = sources[(kind, ref["name"])]
        names |= set(obj.get("data", {})) | set(obj.get("stringData", {}))
    return names


# -- docs/deployment.md -------------------------------------------------------------


def _deployment_files_section() -> str:
    text = DEPLOYMENT_DOC.read_text()
    start = text.index("\n## Deployment files\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else None]


def documented_commands() -> list[list[str]]:
    """The commands of the code blocks of the page's "Deployment files" section."""
    blocks = re.findall(r"```bash\n(.*?)```", _deployment_files_section(), re.DOTALL)
    return [shlex.split(line) for block in blocks for line in block.splitlines() if line]


def documented_images() -> set[str]:
    """The images of the section's table whose header is ``| Service | Image |``."""
    table = _deployment_files_section().split("| Service | Image |", 1)[1]
    rows = re.findall(r"^\|[^|\n]*\|([^|\n]*)\|$", table.split("\n\n", 1)[0], re.MULTILINE)
    return {re.search(r"`([^`]+)`", row).group(1) for row in rows if "`" in row}


def reference_celery_commands() -> set[tuple[str, ...]]:
    """The ``celery -A proj ...`` commands the README and docs/celery.md show."""
    found: set[tuple[str, ...]] = set()
    for path in (ROOT / "README.md", ROOT / "docs" / "celery.md"):
        for command in re.findall(r"celery -A proj [^`\n#]*", path.read_text()):
            found.add(tuple(shlex.split(command)))
    return found


def dockerfile_cmd() -> list[str]:
    return ast.literal_eval(re.search(r"^CMD (\[.*\])$", DOCKERFILE.read_text(), re.M).group(1))


def dockerfile_environment() -> set[str]:
    """The names the Dockerfile's ENV instructions set (``ENV A=1 \\`` continued lines too)."""
    text = DOCKERFILE.read_text().replace("\\\n", " ")
    lines = re.findall(r"^ENV (.*)$", text, re.MULTILINE)
    return {item.split("=", 1)[0] for line in lines for item in line.split()}


def dockerfile_extras() -> set[str]:
    match = re.search(r'pip install "\.\[([^\]]+)\]"', DOCKERFILE.read_text())
    return set(match.group(1).split(","))


# -- The example project and the package ---------------------------------------------


def package_version() -> str:
    """The package's version, from its one source (``django_async_reports/_version.py``)."""
    from django_async_reports._version import __version__

    return __version__


def package_extras() -> set[str]:
    """The names of pyproject.toml's ``[project.optional-dependencies]``."""
    text = (ROOT / "pyproject.toml").read_text()
    section = text.split("[project.optional-dependencies]\n", 1)[1].split("\n[", 1)[0]
    return set(re.findall(r"^([a-z0-9-]+) = \[", section, re.MULTILINE))


def variables_read_by_settings() -> set[str]:
    """The environment variables config/settings.py's code reads (not its docstring).

    ``os.environ.get("X")``, ``os.environ["X"]`` and its helpers ``_env_*("X", ...)``.
    """
    names: set[str] = set()
    for node in ast.walk(ast.parse(SETTINGS.read_text())):
        if isinstance(node, ast.Call) and node.args:
            first, func = node.args[0], node.func
            reads = (
                isinstance(func, ast.Attribute)
                and func.attr == "get"
                and ast.unparse(func.value) == "os.environ"
            ) or (isinstance(func, ast.Name) and func.id.startswith("_env"))
            if reads and isinstance(first, ast.Constant) and isinstance(first.value, str):
                names.add(first.value)
        elif (
            isinstance(node, ast.Subscript)
            and ast.unparse(node.value) == "os.environ"
            and isinstance(node.slice, ast.Constant)
        ):
            names.add(node.slice.value)
    return names


def example_report_settings_keys() -> set[str]:
    """The keys of the example project's ``ASYNC_REPORTS`` dict."""
    for node in ast.parse(SETTINGS.read_text()).body:
        if isinstance(node, ast.Assign) and ast.unparse(node.targets[0]) == "ASYNC_REPORTS":
            return {key.value for key in node.value.keys if isinstance(key, ast.Constant)}
    raise AssertionError("config/settings.py defines no ASYNC_REPORTS")


def example_report_setting(name: str) -> Any:
    """One value of the example project's ``ASYNC_REPORTS`` (a constant expression)."""
    for node in ast.parse(SETTINGS.read_text()).body:
        if isinstance(node, ast.Assign) and ast.unparse(node.targets[0]) == "ASYNC_REPORTS":
            for key, value in zip(node.value.keys, node.value.values, strict=True):
                if isinstance(key, ast.Constant) and key.value == name:
                    return eval(ast.unparse(value), {"__builtins__": {}})  # e.g. 15 * 60
    raise KeyError(name)


def example_health_url() -> str:
    """The health endpoint's path in the example project (config/urls.py + ops_urls)."""
    from django_async_reports import ops_urls

    prefix = None
    for node in ast.walk(ast.parse(EXAMPLE_URLS.read_text())):
        if (
            isinstance(node, ast.Call)
            and ast.unparse(node.func) == "path"
            and "django_async_reports.ops_urls" in ast.unparse(node.args[1])
        ):
            prefix = node.args[0].value
    assert prefix is not None, "config/urls.py does not include django_async_reports.ops_urls"
    (health,) = [p for p in ops_urls.urlpatterns if p.name == "health"]
    return f"/{prefix}{health.pattern}"


def option_values(command: list[str], option: str) -> Iterator[str]:
    """The values given to ``option`` in ``command`` (``-Q a,b`` gives ``a,b``)."""
    for index, token in enumerate(command[:-1]):
        if token == option:
            yield command[index + 1]
