"""The "Permissions and limits" guide's generators (docs/how-to/permissions-and-limits.md).

``Sale`` is the example model (an ``owner``, a ``customer``, an ``amount`` and
a ``sold_on`` date); ``testapp.view_sale`` is its "view" permission. In your
project both are your own.
"""

from __future__ import annotations

# --8<-- [start:imports]
from django.db.models import Sum
from rest_framework import serializers

from django_async_reports import ReportError, ReportGenerator, register

# --8<-- [end:imports]
from tests.testapp.models import Sale  # your own model: from .models import Sale


# --8<-- [start:revenue]
@register
class RevenueReport(ReportGenerator):
    report_type = "revenue"
    label = "Revenue per day"
    columns = ["day", "revenue"]

    @classmethod
    def has_permission(cls, user):
        # Asked on every request, regenerate, retry, schedule and scheduled
        # run, and by GET /types/, which lists only the types the user may run.
        return user.is_authenticated and user.has_perm("testapp.view_sale")

    def rows(self, params):
        return (
            Sale.objects.order_by("sold_on").values_list("sold_on").annotate(revenue=Sum("amount"))
        )


# --8<-- [end:revenue]


# --8<-- [start:export]
#: The most rows one report may hold.
MAX_ROWS = 1_000_000


class ExportParameters(serializers.Serializer):
    year = serializers.IntegerField(min_value=2000, max_value=2100)


@register
class SalesExportReport(ReportGenerator):
    report_type = "sales_export"
    label = "Sales export"
    parameters_class = ExportParameters
    columns = ["sale_id", "date", "customer", "amount"]
    soft_time_limit = 15 * 60  # 15 minutes for this type; SOFT_TIME_LIMIT is 10 by default

    def sales(self, params):
        return Sale.objects.filter(owner=self.user, sold_on__year=params["year"])

    def count(self, params):
        total = self.sales(params).count()
        if total > MAX_ROWS:  # fails the report at once, with this sentence
            raise ReportError(
                f"{params['year']} has {total:,} sales; a report may hold at most "
                f"{MAX_ROWS:,}. Ask for a smaller export."
            )
        return total

    def rows(self, params):
        return self.sales(params).order_by("pk").values_list("pk", "sold_on", "customer", "amount")


# --8<-- [end:export]
