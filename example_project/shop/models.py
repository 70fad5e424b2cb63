"""Customers, products and orders: the data the example report generators read."""

from django.db import models
from django.utils import timezone


class Region(models.TextChoices):
    NORTH = "north", "North"
    SOUTH = "south", "South"
    EAST = "east", "East"
    WEST = "west", "West"
    CENTRAL = "central", "Central"


class Category(models.TextChoices):
    ELECTRONICS = "electronics", "Electronics"
    BOOKS = "books", "Books"
    HOME = "home", "Home & kitchen"
    GARDEN = "garden", "Garden"
    TOYS = "toys", "Toys"
    SPORTS = "sports", "Sports"
    CLOTHING = "clothing", "Clothing"
    GROCERY = "grocery", "Grocery"


class Customer(models.Model):
    name = models.CharField(max_length=120)
    email = models.EmailField(unique=True)
    region = models.CharField(max_length=20, choices=Region.choices, db_index=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} <{self.email}>"


class Product(models.Model):
    sku = models.CharField("SKU", max_length=32, unique=True)
    name = models.CharField(max_length=200)
    category = models.CharField(max_length=20, choices=Category.choices, db_index=True)
    unit_price = models.DecimalField(max_digits=10, decimal_places=2)
    stock = models.PositiveIntegerField(default=0)
    reorder_level = models.PositiveIntegerField(
        default=10, help_text="Restock when the stock falls to this level or below."
    )

    class Meta:
        ordering = ["sku"]

    def __str__(self) -> str:
        return f"{self.sku} {self.name}"

    @property
    def below_reorder_level(self) -> bool:
        return self.stock <= self.reorder_level


class Order(models.Model):
    """One order line: a customer buying a quantity of one product."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        PAID = "paid", "Paid"
        SHIPPED = "shipped", "Shipped"
        DELIVERED = "delivered", "Delivered"
        CANCELLED = "cancelled", "Cancelled"
        REFUNDED = "refunded", "Refunded"

    #: Statuses that count as revenue in the sales and analytics reports.
    SALE_STATUSES = (Status.PAID, Status.SHIPPED, Status.DELIVERED)

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="orders")
    product = models.ForeignKey(Product, on_delete=models.PROTECT, related_name="orders")
    created_at = models.DateTimeField(default=timezone.now)
    quantity = models.PositiveIntegerField(default=1)
    unit_price = models.DecimalField(max_digits=10, decimal_places=2)
    total = models.DecimalField(max_digits=12, decimal_places=2)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PENDING)
    # Copied from the customer when the order is placed, as shops keep the
    # shipping region of the order itself.
    region = models.CharField(max_length=20, choices=Region.choices)

    class Meta:
        ordering = ["-created_at"]
        # Reports filter on created_at and page through it in (created_at, id)
        # order. Deliberately no (status, created_at) index: with
        # "status IN (...)" it tempts planners into sorting every page.
        indexes = [models.Index(fields=["created_at"], name="shop_order_created_idx")]

    def __str__(self) -> str:
        return f"Order #{self.pk}"

    def save(self, *args, **kwargs):
        if self.total is None and self.unit_price is not None:
            self.total = self.unit_price * self.quantity
        if not self.region and self.customer_id:
            self.region = self.customer.region
        super().save(*args, **kwargs)
