from django.conf import settings
from django.db import models


class Sale(models.Model):
    """Rows for the test generators, owned by a user so scoping can be tested."""

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)
    customer = models.CharField(max_length=100)
    amount = models.DecimalField(max_digits=10, decimal_places=2)
    sold_on = models.DateField()

    def __str__(self) -> str:
        return f"{self.customer} {self.amount}"


class TypedRow(models.Model):
    """One column per type the CSV fast path prints, each nullable: its byte-equality table."""

    flag = models.BooleanField(null=True)
    number = models.IntegerField(null=True)
    big = models.BigIntegerField(null=True)
    amount = models.DecimalField(max_digits=20, decimal_places=2, null=True)
    tiny = models.DecimalField(max_digits=20, decimal_places=9, null=True)
    day = models.DateField(null=True)
    moment = models.DateTimeField(null=True)
    clock = models.TimeField(null=True)
    # NULL and '' both: the CSV file must show them alike on both paths.
    label = models.CharField(max_length=200, null=True)  # noqa: DJ001
    note = models.TextField(null=True)  # noqa: DJ001
    key = models.UUIDField(null=True)

    def __str__(self) -> str:
        return f"typed row {self.pk}"
