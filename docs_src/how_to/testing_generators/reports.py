"""The generator the guide's tests exercise: users who signed up between two dates.

Registered only while a test runs (see tests/test_howto_testing_generators.py):
a host registers its own with ``@register`` in its app's ``reports.py``.
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from rest_framework import serializers

from django_async_reports import ReportGenerator


# --8<-- [start:generator]
class SignupsParameters(serializers.Serializer):
    start_date = serializers.DateField()
    end_date = serializers.DateField()

    def validate(self, attrs):
        if attrs["start_date"] > attrs["end_date"]:
            raise serializers.ValidationError({"end_date": "Must not be before start_date."})
        return attrs


class SignupsReport(ReportGenerator):
    report_type = "signups"
    label = "Sign-ups"
    parameters_class = SignupsParameters
    columns = ["username", "email", "joined"]

    def rows(self, params):
        users = get_user_model().objects.filter(
            date_joined__date__range=(params["start_date"], params["end_date"])
        )
        for user in users.order_by("date_joined"):
            yield (user.username, user.email, user.date_joined.date())


# --8<-- [end:generator]
