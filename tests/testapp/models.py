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
