"""The registry of report generators, filled by ``@register`` in ``reports.py`` modules.

``AppConfig.ready()`` autodiscovers a ``reports`` module in every installed app,
as ``django.contrib.admin`` does with ``admin`` modules.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, TypeVar

from .exceptions import AlreadyRegistered, InvalidGenerator, NotRegistered

if TYPE_CHECKING:
    from .generators import ReportGenerator

G = TypeVar("G", bound="type[ReportGenerator]")


class ReportRegistry:
    """Maps ``report_type`` strings to :class:`~django_async_reports.ReportGenerator` classes."""

    def __init__(self) -> None:
        # Named _registry because django.utils.module_loading.autodiscover_modules
        # snapshots and restores register_to._registry around each import.
        self._registry: dict[str, type[ReportGenerator]] = {}

    def register(self, generator_class: G) -> G:
        """Register ``generator_class`` under its ``report_type``; usable as a decorator."""
        from .generators import ReportGenerator

        if not (isinstance(generator_class, type) and issubclass(generator_class, ReportGenerator)):
            raise InvalidGenerator(f"{generator_class!r} is not a ReportGenerator subclass.")
        generator_class.check_declaration()
        report_type = generator_class.report_type
        existing = self._registry.get(report_type)
        if existing is not None and existing is not generator_class:
            raise AlreadyRegistered(
                f"report_type {report_type!r} is already registered by "
                f"{existing.__module__}.{existing.__qualname__}; "
                f"cannot register {generator_class.__module__}.{generator_class.__qualname__}."
            )
        self._registry[report_type] = generator_class
        return generator_class

    def unregister(self, report_type: str) -> None:
        """Remove a generator (mostly for tests)."""
        if report_type not in self._registry:
            raise NotRegistered(f"No report generator is registered as {report_type!r}.")
        del self._registry[report_type]

    def get(self, report_type: str) -> type[ReportGenerator]:
        """Return the generator class for ``report_type`` or raise :class:`NotRegistered`."""
        try:
            return self._registry[report_type]
        except KeyError:
            raise NotRegistered(f"No report generator is registered as {report_type!r}.") from None

    def label_for(self, report_type: str, *, missing: str = "%(report_type)s") -> str:
        """The label of ``report_type``; ``missing % {"report_type": ...}`` when not registered.

        Stored reports and schedules outlive their generator: the admin shows
        them as "sales (not registered)", the API by their type alone.
        """
        generator_class = self._registry.get(report_type)
        if generator_class is None:
            return str(missing) % {"report_type": report_type}
        return str(generator_class.get_label())

    def __contains__(self, report_type: object) -> bool:
        return report_type in self._registry

    def __iter__(self) -> Iterator[type[ReportGenerator]]:
        return iter(sorted(self._registry.values(), key=lambda g: g.report_type))

    def __len__(self) -> int:
        return len(self._registry)

    def choices(self) -> list[tuple[str, str]]:
        """(report_type, label) pairs, sorted, for forms and serializers."""
        return [(g.report_type, g.get_label()) for g in self]


registry = ReportRegistry()


def register(generator_class: G) -> G:
    """Class decorator registering a generator in the default registry."""
    return registry.register(generator_class)
