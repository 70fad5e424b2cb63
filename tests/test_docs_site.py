"""The documentation site's nav (mkdocs.yml) lists every page under docs/.

CI builds the site with ``make docs`` (``mkdocs build --strict``); these checks
only read the files, so a page added without a nav entry fails here too, with
its name, without MkDocs installed.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"


class _ConfigLoader(yaml.SafeLoader):
    """A safe loader that reads mkdocs.yml's ``!!python/...`` tags as None."""


_ConfigLoader.add_multi_constructor("tag:yaml.org,2002:python/", lambda *args: None)


def _config() -> dict[str, Any]:
    return yaml.load((ROOT / "mkdocs.yml").read_text(), Loader=_ConfigLoader)


def _nav_pages(entries: list[Any]) -> Iterator[str]:
    """Every page path of a nav, sections walked; external links left out."""
    for entry in entries:
        values = entry.values() if isinstance(entry, dict) else [entry]
        for value in values:
            if isinstance(value, list):
                yield from _nav_pages(value)
            elif "://" not in value:
                yield value


def test_every_page_under_docs_is_in_the_nav():
    pages = {path.relative_to(DOCS).as_posix() for path in DOCS.rglob("*.md")}
    missing = sorted(pages - set(_nav_pages(_config()["nav"])))
    assert not missing, f"add these pages to the nav in mkdocs.yml: {missing}"


def test_every_nav_entry_is_a_page_and_listed_once():
    nav = list(_nav_pages(_config()["nav"]))
    assert not [page for page in nav if not (DOCS / page).is_file()]
    assert len(nav) == len(set(nav))


def test_the_build_fetches_no_web_fonts():
    # Material loads Google Fonts unless told not to; the build must work offline.
    assert _config()["theme"]["font"] is False
