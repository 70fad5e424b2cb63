from __future__ import annotations

import datetime
from decimal import Decimal

import factory
from django.contrib.auth import get_user_model

from django_async_reports.models import Report
from tests.testapp.models import Sale


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.com")
    password = factory.django.Password("pw")


class ReportFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Report

    user = factory.SubFactory(UserFactory)
    report_type = "numbers"
    title = factory.Sequence(lambda n: f"Report {n}")
    parameters = factory.LazyFunction(lambda: {"count": 3, "delay": 0.0, "text": ""})


class SaleFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Sale

    owner = factory.SubFactory(UserFactory)
    customer = factory.Sequence(lambda n: f"Customer {n}")
    amount = Decimal("10.50")
    sold_on = datetime.date(2024, 12, 1)
