"""Load a how-to guide's module (``docs_src/how_to/...``) for one test only.

The guides' modules are what the pages show, so they decorate their
generators with ``@register`` as a reader's ``reports.py`` would. Importing
one registers them in the default registry: ``guide_module`` imports it
afresh, and afterwards unregisters what it registered and forgets the
module, so no other test sees those report types.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from types import ModuleType

from django_async_reports import registry


@contextmanager
def guide_module(dotted: str) -> Iterator[ModuleType]:
    """Import ``dotted`` with its generators registered; unregister them on exit."""
    before = {g.report_type for g in registry}
    sys.modules.pop(dotted, None)
    try:
        module = importlib.import_module(dotted)
        yield module
    finally:
        for report_type in {g.report_type for g in registry} - before:
            registry.unregister(report_type)
        sys.modules.pop(dotted, None)
