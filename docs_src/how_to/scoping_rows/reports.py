"""The "Scoping rows to the requesting user" guide's generators (docs/how-to/scoping-rows.md).

``Sale`` is the example model (an ``owner`` foreign key to the user, a
``customer``, an ``amount`` and a ``sold_on`` date); in your project it is
one of your own.
"""

from __future__ import annotations

# --8<-- [start:imports]
from django.contrib.auth import get_user_model
from django.db.models import Q
from django.utils import timezone

from django_async_reports import ReportGenerator, register

# --8<-- [end:imports]
from tests.testapp.models import Sale  # your own model: from .models import Sale


# --8<-- [start:own]
@register
class MySalesReport(ReportGenerator):
    report_type = "my_sales"
    label = "My sales"
    columns = ["sale_id", "date", "customer", "amount"]

    def rows(self, params):
        # self.user is the report's owner: whoever requested it, or the
        # schedule's owner for a scheduled run. Never a user named in params.
        # self.report is the Report being built: the rows stop at the day it
        # was requested, so a retry the next morning writes the same file.
        requested_on = timezone.localdate(self.report.created_at)
        return (
            Sale.objects.filter(owner=self.user, sold_on__lte=requested_on)
            .order_by("pk")
            .values_list("pk", "sold_on", "customer", "amount")
        )


# --8<-- [end:own]


# --8<-- [start:team]
@register
class TeamSalesReport(ReportGenerator):
    report_type = "team_sales"
    label = "My teams' sales"
    columns = ["sale_id", "seller", "customer", "amount"]

    def sales(self):
        user = self.user
        if user.is_superuser:
            return Sale.objects.all()  # a deliberate choice: superusers see every row
        # The sellers who share a group (a team, an organisation) with the requester.
        teammates = get_user_model().objects.filter(groups__in=user.groups.all())
        return Sale.objects.filter(Q(owner=user) | Q(owner__in=teammates))

    def count(self, params):
        return self.sales().count()

    def rows(self, params):
        return (
            self.sales().order_by("pk").values_list("pk", "owner__username", "customer", "amount")
        )


# --8<-- [end:team]
