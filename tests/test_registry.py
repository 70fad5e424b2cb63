import pytest
from django.core.exceptions import ImproperlyConfigured

from django_async_reports import Chart, ReportGenerator, register, registry
from django_async_reports.exceptions import AlreadyRegistered, InvalidGenerator, NotRegistered
from django_async_reports.registry import ReportRegistry
from tests.testapp.reports import NumbersReport, SalesReport


def test_autodiscovery_found_the_test_app_generators():
    assert registry.get("sales") is SalesReport
    assert registry.get("numbers") is NumbersReport
    assert "sales" in registry
    assert ("sales", "Sales report") in registry.choices()


def test_unknown_type():
    with pytest.raises(NotRegistered):
        registry.get("nope")
    with pytest.raises(LookupError):  # NotRegistered is a LookupError too
        registry.get("nope")


def test_second_class_under_one_name_is_an_error():
    local = ReportRegistry()
    local.register(NumbersReport)
    local.register(NumbersReport)  # the same class again is harmless (re-imports)

    class Other(ReportGenerator):
        report_type = "numbers"
        columns = ["x"]

        def rows(self, params):
            yield (1,)

    with pytest.raises(AlreadyRegistered, match="already registered"):
        local.register(Other)


def test_register_decorator_uses_the_default_registry():
    class Temporary(ReportGenerator):
        report_type = "temporary_for_test"
        columns = ["x"]

        def rows(self, params):
            yield (1,)

    try:
        assert register(Temporary) is Temporary
        assert registry.get("temporary_for_test") is Temporary
    finally:
        registry.unregister("temporary_for_test")
    assert "temporary_for_test" not in registry


@pytest.mark.parametrize(
    ("attrs", "message"),
    [
        ({"columns": ["x"]}, "report_type"),
        ({"report_type": "bad type!", "columns": ["x"]}, "letters"),
        ({"report_type": "ok"}, "columns"),
        ({"report_type": "ok", "columns": ["x"], "formats": ["docx"]}, "known formats"),
        ({"report_type": "ok", "columns": ["x"], "formats": []}, "known formats"),
        ({"report_type": "ok", "columns": ["x"], "retention": 0}, "retention"),
        ({"report_type": "ok", "columns": ["x"], "reuse_window": -1}, "reuse_window"),
        ({"report_type": "ok", "columns": ["x"], "charts": ["bar"]}, "Chart instances"),
        (
            {
                "report_type": "ok",
                "columns": ["x"],
                "charts": [Chart.bar("Sales", category="day", values=["x"])],
            },
            "'day' is not one of the columns",
        ),
    ],
)
def test_incomplete_generators_are_refused(attrs, message):
    def rows(self, params):
        yield (1,)

    cls = type("Incomplete", (ReportGenerator,), {**attrs, "rows": rows})
    with pytest.raises(InvalidGenerator, match=message):
        ReportRegistry().register(cls)
    assert issubclass(InvalidGenerator, ImproperlyConfigured)


def test_rows_must_be_implemented():
    cls = type("NoRows", (ReportGenerator,), {"report_type": "norows", "columns": ["x"]})
    with pytest.raises(InvalidGenerator, match="rows"):
        ReportRegistry().register(cls)


def test_non_generator_is_refused():
    with pytest.raises(InvalidGenerator):
        ReportRegistry().register(object)  # type: ignore[arg-type]


def test_autodiscovery_runs_again_over_every_app_with_a_filled_registry():
    # autodiscover_modules snapshots register_to._registry around each app's
    # import; a registry without it broke start-up for any app listed after
    # the first one with a reports module.
    from django.utils.module_loading import autodiscover_modules

    before = dict(registry._registry)
    assert len(registry)  # truthy: the snapshot path is taken
    autodiscover_modules("reports", register_to=registry)
    assert registry._registry == before
