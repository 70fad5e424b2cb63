"""What a release is made of agrees with itself: version, classifiers, matrix, workflow, changelog.

``scripts/check_release.sh`` (run by ``.ci/run`` and by the workflow's build job)
builds the distributions, runs ``twine check`` and the tutorial from the wheel;
these checks read the files the release is described in:

- one version source, ``django_async_reports/_version.py``, which pyproject.toml reads;
- the Python and Django classifiers are the versions tox's matrix tests, and the
  lower bounds of ``requires-python`` and of Django are its oldest;
- ``.github/workflows/ci.yml`` is valid against the GitHub workflow schema that
  check-jsonschema vendors, runs every cell of that matrix on the three service
  containers, and publishes to PyPI with trusted publishing, only on a tag, only after
  everything else passed;
- CHANGELOG.md is in Keep a Changelog form, and its newest release is this version;
- README.md, PyPI's page, links nowhere relative (PyPI would break those links).
"""

from __future__ import annotations

import re
import subprocess
import sys
from itertools import product
from pathlib import Path
from typing import Any

import yaml
from packaging.requirements import Requirement
from packaging.version import Version

from django_async_reports._version import __version__

ROOT = Path(__file__).resolve().parent.parent
WORKFLOW = ROOT / ".github" / "workflows" / "ci.yml"
SITE = "https://django-async-reports.github.io/django-async-reports/"
CHANGE_TYPES = {"Added", "Changed", "Deprecated", "Removed", "Fixed", "Security"}
SERVICES = {"postgres", "redis", "rabbitmq"}


def _pyproject() -> str:
    return (ROOT / "pyproject.toml").read_text()


def _project_list(name: str) -> list[str]:
    """A list of pyproject.toml's [project] table, as strings (tomllib is Python 3.11+)."""
    block = re.search(rf"^{name} = \[\n(.*?)^\]", _pyproject(), re.MULTILINE | re.DOTALL)
    assert block, name
    return re.findall(r'^\s+"([^"]+)",', block.group(1), re.MULTILINE)


def _tox_test_envs() -> list[str]:
    """The matrix cells of tox.ini's env_list, braces expanded (py312-django60, ...)."""
    text = (ROOT / "tox.ini").read_text()
    listing = re.search(r"^env_list =\n((?:    .+\n)+)", text, re.MULTILINE).group(1)
    envs: list[str] = []
    for line in listing.split():
        parts = [part.split(",") for part in re.split(r"[{}]", line) if part]
        envs += ["".join(combo) for combo in product(*parts)]
    return [env for env in envs if re.fullmatch(r"py3\d+-django\d+", env)]


def _matrix_versions() -> tuple[set[str], set[str]]:
    """The Python and Django versions of the matrix: py312-django60 is 3.12 and 6.0."""
    pythons, djangos = set(), set()
    for env in _tox_test_envs():
        python, major, minor = re.fullmatch(r"py3(\d+)-django(\d)(\d+)", env).groups()
        pythons.add(f"3.{python}")
        djangos.add(f"{major}.{minor}")
    return pythons, djangos


def _workflow() -> dict[str, Any]:
    # PyYAML reads the key `on` as True (YAML 1.1); the jobs are what is checked here.
    return yaml.safe_load(WORKFLOW.read_text())


# -- the version --------------------------------------------------------------------
def test_the_version_has_one_source():
    text = _pyproject()
    assert re.search(r'^dynamic = \["version"\]$', text, re.MULTILINE)
    assert not re.search(r"^version = \"", text, re.MULTILINE), "a second version in pyproject"
    assert 'version = { attr = "django_async_reports._version.__version__" }' in text
    assert str(Version(__version__)) == __version__, "not a normalised PEP 440 version"
    import django_async_reports

    assert django_async_reports.__version__ == __version__


# -- classifiers and the tested matrix ----------------------------------------------
def test_classifiers_are_the_tested_matrix():
    pythons, djangos = _matrix_versions()
    assert pythons == {"3.10", "3.11", "3.12", "3.13"}, pythons  # a sanity check on the parse
    classifiers = _project_list("classifiers")
    assert {
        c.rsplit(" :: ", 1)[1]
        for c in classifiers
        if c.startswith("Programming Language :: Python :: 3.")
    } == pythons
    assert {
        c.rsplit(" :: ", 1)[1] for c in classifiers if c.startswith("Framework :: Django :: ")
    } == djangos
    oldest_python = min(pythons, key=Version)
    assert re.search(rf'^requires-python = ">={oldest_python}"$', _pyproject(), re.MULTILINE)
    django = next(Requirement(r) for r in _project_list("dependencies") if r.startswith("Django"))
    assert django.specifier == Requirement(f"Django>={min(djangos, key=Version)}").specifier


# -- the workflow --------------------------------------------------------------------
def test_the_workflow_is_valid_against_the_github_workflow_schema():
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "check_jsonschema",
            "--builtin-schema",
            "vendor.github-workflows",
            str(WORKFLOW),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_workflow_runs_the_whole_tox_matrix_on_the_three_services():
    jobs = _workflow()["jobs"]
    test = jobs["test"]
    cells = test["strategy"]["matrix"]["include"]
    assert sorted(cell["toxenv"] for cell in cells) == sorted(_tox_test_envs())
    for cell in cells:  # each cell runs on the Python its tox env names
        assert cell["toxenv"].startswith("py" + cell["python"].replace(".", "") + "-"), cell
    for name in ("test", "build"):
        assert set(jobs[name]["services"]) == SERVICES, name
        ports = {p for svc in jobs[name]["services"].values() for p in svc["ports"]}
        assert {"5432:5432", "6379:6379", "5672:5672"} <= ports, name
    assert "tox -e ${{ matrix.toxenv }}" in [step.get("run") for step in test["steps"]]
    runs = {job: " ".join(step.get("run", "") for step in jobs[job]["steps"]) for job in jobs}
    assert "tox -e faults" in runs["faults"] and "tox -e lint" in runs["lint"]
    assert "mkdocs build --strict" in runs["docs"]
    assert "scripts/check_release.sh dist" in runs["build"]


def test_the_workflow_publishes_with_trusted_publishing_only_on_a_tag():
    jobs = _workflow()["jobs"]
    publish = jobs["publish"]
    assert publish["if"] == "startsWith(github.ref, 'refs/tags/v')"
    assert set(publish["needs"]) == set(jobs) - {"publish", "pages"}, "after every check"
    assert publish["permissions"] == {"id-token": "write"}, "OIDC, and nothing more"
    assert publish["environment"]["name"] == "pypi"
    uses = [step.get("uses", "") for step in publish["steps"]]
    assert "pypa/gh-action-pypi-publish@release/v1" in uses
    # No token: trusted publishing needs none, and a stored one could leak.
    assert "password" not in WORKFLOW.read_text() and "secrets." not in WORKFLOW.read_text()
    # What is published is what the build job checked: its artifact, not a new build.
    assert any(u.startswith("actions/download-artifact@") for u in uses)
    assert not any("build" in step.get("run", "") for step in publish["steps"])
    assert _workflow()["permissions"] == {"contents": "read"}, "least privilege by default"


# -- the changelog -------------------------------------------------------------------
def test_the_changelog_is_in_keep_a_changelog_form():
    text = (ROOT / "CHANGELOG.md").read_text()
    assert text.startswith("# Changelog\n")
    assert "[Keep a Changelog](https://keepachangelog.com/en/1.1.0/)" in text
    releases = re.findall(r"^## \[([^\]]+)\](?: - (\d{4}-\d{2}-\d{2}))?$", text, re.MULTILINE)
    headings = re.findall(r"^## .*$", text, re.MULTILINE)
    assert len(releases) == len(headings), f"a version heading out of form: {headings}"
    assert releases[0] == ("Unreleased", ""), "[Unreleased] comes first"
    versions = [Version(v) for v, _ in releases[1:]]
    assert versions == sorted(versions, reverse=True), "newest first"
    assert all(date for _, date in releases[1:]), "every release has its date"
    if not Version(__version__).is_devrelease:
        assert str(versions[0]) == __version__, "the newest release is this version"
    types = set(re.findall(r"^### (.+)$", text, re.MULTILINE))
    assert types <= CHANGE_TYPES, f"not a Keep a Changelog type: {types - CHANGE_TYPES}"
    for version, _ in releases:  # each heading links to its diff or its tag
        assert re.search(rf"^\[{re.escape(version)}\]: https://", text, re.MULTILINE), version


# -- the README, which is PyPI's page ------------------------------------------------
def test_the_readme_links_nowhere_relative():
    text = (ROOT / "README.md").read_text()
    targets = re.findall(r"\]\(([^)\s]+)\)", text)
    assert targets
    relative = [t for t in targets if not t.startswith(("https://", "http://", "#", "mailto:"))]
    assert not relative, f"broken on PyPI: {relative}"
    for target in targets:  # each link to the site names a page of docs/
        if target.startswith(SITE):
            page = target[len(SITE) :].split("#")[0].rstrip("/") or "index"
            assert (ROOT / "docs" / f"{page}.md").is_file(), target
