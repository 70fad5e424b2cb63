"""Check that a built wheel ships what a host project needs at run time."""

from __future__ import annotations

import sys
import zipfile
from pathlib import Path

REQUIRED = [
    "django_async_reports/py.typed",
    "django_async_reports/migrations/0001_initial.py",
    "django_async_reports/static/django_async_reports/admin.css",
    "django_async_reports/templates/django_async_reports/email/report_completed_subject.txt",
    "django_async_reports/templates/django_async_reports/email/report_completed_body.txt",
    "django_async_reports/templates/django_async_reports/email/report_failed_subject.txt",
    "django_async_reports/templates/django_async_reports/email/report_failed_body.txt",
]
FORBIDDEN_PREFIXES = ("tests/", "example_project/", "docs/", "benchmarks/")


def main(dist: str) -> int:
    wheels = sorted(Path(dist).glob("django_async_reporting-*.whl"))
    if not wheels:
        print(f"no wheel in {dist}")
        return 1
    names = set(zipfile.ZipFile(wheels[-1]).namelist())
    missing = [n for n in REQUIRED if n not in names]
    leaked = sorted(n for n in names if n.startswith(FORBIDDEN_PREFIXES))
    for n in missing:
        print(f"missing from wheel: {n}")
    for n in leaked:
        print(f"should not ship: {n}")
    print(f"{wheels[-1].name}: {len(names)} files, {len(missing)} missing, {len(leaked)} leaked")
    return 1 if missing or leaked else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
