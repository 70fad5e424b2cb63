"""A griffe extension for the documentation site (mkdocs.yml): Sphinx roles as code.

The package's docstrings cite names with Sphinx roles (``:class:`~.models.Report```,
``:func:`register```). mkdocstrings renders docstrings as Markdown, where a role would
show as ``:class:~.models.Report``; this turns each into inline code of the name as
Sphinx would print it (``Report``: a leading ``~`` keeps the last part only). No link
is made: a relative name (``.charts``) cannot be resolved to a page reliably.
"""

from __future__ import annotations

import re
from typing import Any

import griffe

# :role:`target` or :role:`~target` (Sphinx's domain-less Python roles).
ROLE = re.compile(r":(?:class|func|meth|mod|data|attr|exc|obj|const):`(~?)([^`]+)`")


def as_code(match: re.Match[str]) -> str:
    """The role's target as inline code, shortened to its last part after a ``~``."""
    tilde, target = match.groups()
    if tilde:
        target = target.rsplit(".", 1)[-1]
    return f"`{target}`"


class SphinxRolesAsCode(griffe.Extension):
    """Rewrite the Sphinx roles of every docstring once the package is loaded."""

    def on_object(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        rewrite(obj)

    def on_package(self, *, pkg: griffe.Module, **kwargs: Any) -> None:
        rewrite(pkg)  # on_object is not called for the package itself


def rewrite(obj: griffe.Object) -> None:
    """Replace the roles of ``obj``'s docstring, if it has one."""
    if obj.docstring is not None:
        obj.docstring.value = ROLE.sub(as_code, obj.docstring.value)
