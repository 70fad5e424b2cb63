"""Asynchronous, cancellable, prioritised reports for Django, built by Celery workers.

Host projects subclass :class:`ReportGenerator` in a ``reports.py`` module of
any installed app and decorate it with :func:`register`.
"""

from __future__ import annotations

from ._version import __version__
from .charts import Chart
from .exceptions import ReportError
from .generators import ReportGenerator
from .registry import register, registry

__all__ = ["Chart", "ReportError", "ReportGenerator", "__version__", "register", "registry"]
