"""The "Parameters and validation" guide's generator (docs/how-to/parameters.md).

``Sale`` is the example model (an ``owner``, a ``customer``, an ``amount`` and
a ``sold_on`` date); in your project it is one of your own.
"""

from __future__ import annotations

# --8<-- [start:imports]
import datetime

from django.utils import timezone
from rest_framework import serializers

from django_async_reports import ReportGenerator, register

# --8<-- [end:imports]
from tests.testapp.models import Sale  # your own model: from .models import Sale

# --8<-- [start:parameters]
#: The longest period one report may cover, so that nobody asks for ten years at once.
MAX_DAYS = 366


class SalesParameters(serializers.Serializer):
    start_date = serializers.DateField(help_text="First day of the period, included.")
    end_date = serializers.DateField(help_text="Last day of the period, included.")
    order_by = serializers.ChoiceField(
        choices=[("sold_on", "Date"), ("-amount", "Largest first")],
        default="sold_on",
        help_text="Order of the rows.",
    )
    min_amount = serializers.DecimalField(
        max_digits=10, decimal_places=2, min_value=0, default="0.00"
    )

    def validate_start_date(self, value: datetime.date) -> datetime.date:
        # Field-level rule: its error is reported on start_date.
        if value > timezone.localdate():
            raise serializers.ValidationError("Must not be in the future.")
        return value

    def validate(self, attrs: dict) -> dict:
        # Cross-field rules: they see every field, already converted.
        start, end = attrs["start_date"], attrs["end_date"]
        if end < start:
            raise serializers.ValidationError({"end_date": "Must not be before start_date."})
        if (end - start).days + 1 > MAX_DAYS:
            raise serializers.ValidationError(
                {"end_date": f"The period may cover at most {MAX_DAYS} days."}
            )
        return attrs


# --8<-- [end:parameters]


# --8<-- [start:generator]
@register
class SalesByPeriodReport(ReportGenerator):
    report_type = "sales_by_period"
    label = "Sales by period"
    description = "Your sales between two dates."
    parameters_class = SalesParameters
    columns = ["sale_id", "date", "customer", "amount"]

    def sales(self, params):
        # params is the serializer's validated_data: dates are datetime.date,
        # min_amount a Decimal, and the defaults are filled in.
        return Sale.objects.filter(
            owner=self.user,
            sold_on__range=(params["start_date"], params["end_date"]),
            amount__gte=params["min_amount"],
        ).order_by(params["order_by"], "pk")

    def count(self, params):
        return self.sales(params).count()

    def rows(self, params):
        return self.sales(params).values_list("pk", "sold_on", "customer", "amount")


# --8<-- [end:generator]
