"""The seed's five report types, registered with ``@register`` and found by autodiscovery.

Each generator declares its parameters (a DRF serializer validated before
anything is queued), its columns, and ``rows()`` yielding tuples in column
order; ``count()`` gives the worker a true percentage.

Rows are read with :func:`chunked_values`: one complete ``LIMIT`` query per
chunk (keyset pagination) rather than one long-lived cursor from
``.iterator()``. Between chunks the worker writes progress, and on SQLite a
connection that still holds an open read cursor cannot write once another
process (the web server, the other worker process) has written: SQLite fails
at once with "database is locked" (SQLITE_BUSY_SNAPSHOT), whatever the
timeout. Chunked queries hold no cursor between chunks, stream in constant
memory, and are as fast on PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from django.db.models import Count, DecimalField, F, Max, Q, QuerySet, Sum, Value
from django.db.models.functions import Coalesce, TruncDate, TruncMonth
from django.utils import timezone
from rest_framework import serializers

from django_async_reports import Chart, ReportGenerator, register

from .models import Category, Customer, Order, Product, Region

CHUNK_SIZE = 2000
MONEY = DecimalField(max_digits=14, decimal_places=2)
ZERO = Decimal("0.00")
CENT = Decimal("0.01")


# -- helpers ----------------------------------------------------------------------
def value_chunks(
    queryset: QuerySet,
    fields: Sequence[str],
    *,
    order_by: str = "pk",
    since: Any = None,
    chunk_size: int = CHUNK_SIZE,
) -> Iterator[list[tuple[Any, ...]]]:
    """Lists of ``values_list("pk", *fields)`` rows, ordered by ``(order_by, pk)``.

    Keyset pagination: each chunk is one query starting after the last row of
    the previous one, so every chunk costs the same however far the report
    has got (``OFFSET`` would rescan all earlier rows). ``order_by`` is "pk"
    or a non-null field listed in ``fields``, ideally indexed.

    ``since`` keeps rows whose ``order_by`` is at least that value. Pass it
    here rather than filtering ``queryset`` on it: each query then has a
    single lower bound on the index. Given two (``>= start`` and ``>= last
    row``), SQLite ranges its index scan on the first, and every chunk would
    rescan the report from its start.
    """
    qs = queryset.values_list("pk", *fields)
    if order_by == "pk":
        qs, position = qs.order_by("pk"), None
    else:
        qs, position = qs.order_by(order_by, "pk"), 1 + list(fields).index(order_by)
    last: tuple[Any, ...] | None = None
    while True:
        if last is None:
            page = qs if since is None else qs.filter(**{f"{order_by}__gte": since})
        elif position is None:
            page = qs.filter(pk__gt=last[0])
        else:
            # (order_by, pk) > (value, last pk), written so an index on order_by is used.
            value = last[position]
            page = qs.filter(
                Q(**{f"{order_by}__gt": value}) | Q(**{order_by: value, "pk__gt": last[0]}),
                **{f"{order_by}__gte": value},
            )
        rows = list(page[:chunk_size])
        if rows:
            yield rows
        if len(rows) < chunk_size:
            return
        last = rows[-1]


def chunked_values(
    queryset: QuerySet, fields: Sequence[str], *, order_by: str = "pk", since: Any = None
) -> Iterator[tuple[Any, ...]]:
    """The rows of :func:`value_chunks`, one by one."""
    for chunk in value_chunks(queryset, fields, order_by=order_by, since=since):
        yield from chunk


def day_start(day: date | None) -> datetime | None:
    """Midnight at the start of ``day`` in the current time zone."""
    if day is None:
        return None
    return datetime.combine(day, time.min, tzinfo=timezone.get_current_timezone())


def created_between(start: date | None, end: date | None) -> Q:
    """Rows created on ``start`` .. ``end`` inclusive, in the current time zone.

    A half-open datetime range keeps the query on the ``created_at`` index,
    which ``created_at__date`` would not.
    """
    q = Q()
    if start is not None:
        q &= Q(created_at__gte=day_start(start))
    if end is not None:
        q &= Q(created_at__lt=day_start(end + timedelta(days=1)))
    return q


def cents(value: Decimal | None) -> Decimal:
    """An amount rounded to the cent: SQLite sums decimals as floats (``12.3000000001``)."""
    return (value or ZERO).quantize(CENT)


def money(value: Decimal | None) -> str:
    """A JSON-safe amount for ``result_data`` (JSON has no decimal type)."""
    return str(cents(value))


def local_date(value: datetime) -> date:
    return timezone.localtime(value).date()


def validate_range(attrs: dict[str, Any]) -> dict[str, Any]:
    start, end = attrs.get("start_date"), attrs.get("end_date")
    if start and end and start > end:
        raise serializers.ValidationError({"end_date": "Must not be before start_date."})
    return attrs


# -- sales ------------------------------------------------------------------------
class SalesParameters(serializers.Serializer):
    start_date = serializers.DateField(help_text="First day included (YYYY-MM-DD).")
    end_date = serializers.DateField(help_text="Last day included (YYYY-MM-DD).")
    region = serializers.ChoiceField(choices=Region.choices, required=False)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        return validate_range(attrs)


@register
class SalesReport(ReportGenerator):
    report_type = "sales"
    label = "Sales report"
    description = (
        "One row per sale (paid, shipped or delivered order) between start_date and end_date, "
        "optionally in one region."
    )
    parameters_class = SalesParameters
    columns = [
        "order_id",
        "date",
        "customer",
        "customer_email",
        "region",
        "sku",
        "product",
        "category",
        "quantity",
        "unit_price",
        "total",
        "status",
    ]
    chunk_size = CHUNK_SIZE

    def queryset(self, params: dict[str, Any], *, from_start: bool = True) -> QuerySet[Order]:
        """The sales; ``from_start=False`` leaves the start date to ``chunked_values``."""
        start = params["start_date"] if from_start else None
        qs = Order.objects.filter(
            created_between(start, params["end_date"]), status__in=Order.SALE_STATUSES
        )
        if params.get("region"):
            qs = qs.filter(region=params["region"])
        return qs

    def count(self, params: dict[str, Any]) -> int:
        return self.queryset(params).count()

    def rows(self, params: dict[str, Any]) -> Iterator[Sequence[Any]]:
        fields = [
            "created_at",
            "customer__name",
            "customer__email",
            "region",
            "product__sku",
            "product__name",
            "product__category",
            "quantity",
            "unit_price",
            "total",
            "status",
        ]
        rows = chunked_values(
            self.queryset(params, from_start=False),
            fields,
            order_by="created_at",
            since=day_start(params["start_date"]),
        )
        for pk, created_at, *rest in rows:
            yield (pk, local_date(created_at), *rest)

    def summary(self, params: dict[str, Any], row_count: int) -> dict[str, Any]:
        totals = self.queryset(params).aggregate(
            revenue=Coalesce(Sum("total"), Value(ZERO), output_field=MONEY),
            units=Coalesce(Sum("quantity"), 0),
        )
        return {
            "orders": row_count,
            "units_sold": totals["units"],
            "total_revenue": money(totals["revenue"]),
            "start_date": params["start_date"].isoformat(),
            "end_date": params["end_date"].isoformat(),
        }


# -- inventory --------------------------------------------------------------------
class InventoryParameters(serializers.Serializer):
    category = serializers.ChoiceField(choices=Category.choices, required=False)
    below_reorder_only = serializers.BooleanField(
        default=False, help_text="Only products at or below their reorder level."
    )


@register
class InventoryReport(ReportGenerator):
    report_type = "inventory"
    label = "Inventory report"
    description = "Every product with its stock, stock value, units sold and a reorder flag."
    parameters_class = InventoryParameters
    columns = [
        "sku",
        "product",
        "category",
        "unit_price",
        "stock",
        "reorder_level",
        "stock_value",
        "units_sold",
        "below_reorder_level",
    ]

    def queryset(self, params: dict[str, Any]) -> QuerySet[Product]:
        qs = Product.objects.all()
        if params.get("category"):
            qs = qs.filter(category=params["category"])
        if params.get("below_reorder_only"):
            qs = qs.filter(stock__lte=F("reorder_level"))
        return qs

    def count(self, params: dict[str, Any]) -> int:
        return self.queryset(params).count()

    def rows(self, params: dict[str, Any]) -> Iterator[Sequence[Any]]:
        # A shop has thousands of products, not millions: one grouped query
        # for the units sold, then the products in chunks.
        sold = dict(
            Order.objects.filter(status__in=Order.SALE_STATUSES)
            .order_by()
            .values("product_id")
            .annotate(units=Sum("quantity"))
            .values_list("product_id", "units")
        )
        fields = ["sku", "name", "category", "unit_price", "stock", "reorder_level"]
        for pk, sku, name, category, price, stock, reorder in chunked_values(
            self.queryset(params), fields
        ):
            below = "yes" if stock <= reorder else "no"
            value = cents(price * stock)
            yield (sku, name, category, price, stock, reorder, value, sold.get(pk, 0), below)

    def summary(self, params: dict[str, Any], row_count: int) -> dict[str, Any]:
        qs = self.queryset(params)
        value = sum((price * stock for price, stock in qs.values_list("unit_price", "stock")), ZERO)
        return {
            "products": row_count,
            "below_reorder_level": qs.filter(stock__lte=F("reorder_level")).count(),
            "stock_value": money(value),
        }


# -- customers --------------------------------------------------------------------
class CustomersParameters(serializers.Serializer):
    region = serializers.ChoiceField(choices=Region.choices, required=False)


@register
class CustomersReport(ReportGenerator):
    report_type = "customers"
    label = "Customer report"
    description = "Every customer with their number of orders, total spent and last order."
    parameters_class = CustomersParameters
    columns = [
        "customer_id",
        "name",
        "email",
        "region",
        "customer_since",
        "orders",
        "total_spent",
        "last_order_at",
    ]
    # Keeps "customer_id IN (...)" under old SQLite's 999-parameter limit.
    chunk_size = 900

    def queryset(self, params: dict[str, Any]) -> QuerySet[Customer]:
        qs = Customer.objects.all()
        if params.get("region"):
            qs = qs.filter(region=params["region"])
        return qs

    def count(self, params: dict[str, Any]) -> int:
        return self.queryset(params).count()

    def rows(self, params: dict[str, Any]) -> Iterator[Sequence[Any]]:
        # Customers a chunk at a time, then one grouped query over the orders
        # of that chunk (on the customer_id index). Annotating the customers
        # queryset instead would group every remaining customer for each chunk.
        fields = ["name", "email", "region", "created_at"]
        chunks = value_chunks(self.queryset(params), fields, chunk_size=self.chunk_size)
        for chunk in chunks:
            stats = {
                customer_id: (n, spent, last)
                for customer_id, n, spent, last in Order.objects.filter(
                    customer_id__in=[row[0] for row in chunk]
                )
                .order_by()
                .values("customer_id")
                .annotate(
                    n=Count("pk"),
                    spent=Sum("total", filter=Q(status__in=Order.SALE_STATUSES)),
                    last=Max("created_at"),
                )
                .values_list("customer_id", "n", "spent", "last")
            }
            for pk, name, email, region, since in chunk:
                n, spent, last = stats.get(pk, (0, ZERO, None))
                yield (pk, name, email, region, local_date(since), n, cents(spent), last or "")


# -- orders -----------------------------------------------------------------------
class OrdersParameters(serializers.Serializer):
    status = serializers.ChoiceField(choices=Order.Status.choices, required=False)
    region = serializers.ChoiceField(choices=Region.choices, required=False)
    start_date = serializers.DateField(required=False, allow_null=True)
    end_date = serializers.DateField(required=False, allow_null=True)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        return validate_range(attrs)


@register
class OrdersReport(ReportGenerator):
    report_type = "orders"
    label = "Order report"
    description = "Every order, optionally filtered by status, region and dates."
    parameters_class = OrdersParameters
    columns = [
        "order_id",
        "created_at",
        "status",
        "customer",
        "customer_email",
        "region",
        "sku",
        "product",
        "quantity",
        "unit_price",
        "total",
    ]
    chunk_size = CHUNK_SIZE

    def queryset(self, params: dict[str, Any], *, from_start: bool = True) -> QuerySet[Order]:
        """The orders; ``from_start=False`` leaves the start date to ``chunked_values``."""
        start = params.get("start_date") if from_start else None
        qs = Order.objects.filter(created_between(start, params.get("end_date")))
        if params.get("status"):
            qs = qs.filter(status=params["status"])
        if params.get("region"):
            qs = qs.filter(region=params["region"])
        return qs

    def count(self, params: dict[str, Any]) -> int:
        return self.queryset(params).count()

    def rows(self, params: dict[str, Any]) -> Iterator[Sequence[Any]]:
        fields = [
            "created_at",
            "status",
            "customer__name",
            "customer__email",
            "region",
            "product__sku",
            "product__name",
            "quantity",
            "unit_price",
            "total",
        ]
        yield from chunked_values(
            self.queryset(params, from_start=False),
            fields,
            order_by="created_at",
            since=day_start(params.get("start_date")),
        )


# -- analytics --------------------------------------------------------------------
class AnalyticsParameters(serializers.Serializer):
    start_date = serializers.DateField(required=False, allow_null=True)
    end_date = serializers.DateField(required=False, allow_null=True)
    group_by = serializers.ChoiceField(
        choices=[("day", "Day"), ("month", "Month"), ("region", "Region")], default="day"
    )
    top = serializers.IntegerField(
        min_value=1, max_value=50, default=5, help_text="How many top products to summarise."
    )

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        return validate_range(attrs)


@register
class AnalyticsReport(ReportGenerator):
    """Aggregates per day, month or region; headline figures go to ``result_data["summary"]``."""

    report_type = "analytics"
    label = "Analytics dashboard"
    description = (
        "Sales aggregated per day, month or region (group_by), with a summary: revenue, "
        "orders, average order value, top products, revenue per region and orders per status."
    )
    parameters_class = AnalyticsParameters
    columns = ["group", "orders", "units", "revenue", "average_order_value", "customers"]
    # Native charts in XLSX, drawings in the PDF summary.
    charts = [
        Chart.line("Revenue per group", category="group", values=["revenue"]),
        Chart.bar("Orders per group", category="group", values=["orders"]),
        Chart.pie("Revenue per region", summary_key="revenue_by_region"),
        Chart.bar(
            "Top products by revenue",
            summary_key="top_products",
            category="name",
            values=["revenue"],
        ),
        Chart.pie("Orders per status", summary_key="orders_by_status"),
    ]

    def orders(self, params: dict[str, Any]) -> QuerySet[Order]:
        return Order.objects.filter(
            created_between(params.get("start_date"), params.get("end_date"))
        )

    def sales(self, params: dict[str, Any]) -> QuerySet[Order]:
        return self.orders(params).filter(status__in=Order.SALE_STATUSES)

    def _aggregate_rows(self, params: dict[str, Any]) -> list[tuple[Any, ...]]:
        if not hasattr(self, "_rows"):
            group_by = params.get("group_by", "day")
            if group_by == "region":
                qs = self.sales(params).values(group=F("region"))
            else:
                trunc = TruncDate if group_by == "day" else TruncMonth
                qs = self.sales(params).values(group=trunc("created_at"))
            qs = qs.annotate(
                n_orders=Count("pk"),
                n_units=Sum("quantity"),
                revenue=Coalesce(Sum("total"), Value(ZERO), output_field=MONEY),
                n_customers=Count("customer", distinct=True),
            ).order_by("group")
            rows = []
            for item in qs:
                group = item["group"]
                if isinstance(group, datetime):
                    group = local_date(group)
                if group_by == "month" and isinstance(group, date):
                    group = group.strftime("%Y-%m")
                n_orders, revenue = item["n_orders"], cents(item["revenue"])
                aov = cents(revenue / n_orders) if n_orders else ZERO
                rows.append((group, n_orders, item["n_units"], revenue, aov, item["n_customers"]))
            self._rows = rows
        return self._rows

    def count(self, params: dict[str, Any]) -> int:
        return len(self._aggregate_rows(params))

    def rows(self, params: dict[str, Any]) -> Iterator[Sequence[Any]]:
        yield from self._aggregate_rows(params)

    def summary(self, params: dict[str, Any], row_count: int) -> dict[str, Any]:
        sales = self.sales(params)
        totals = sales.aggregate(
            revenue=Coalesce(Sum("total"), Value(ZERO), output_field=MONEY),
            orders=Count("pk"),
            units=Coalesce(Sum("quantity"), 0),
            customers=Count("customer", distinct=True),
        )
        top_products = (
            sales.values("product__sku", "product__name")
            .annotate(
                revenue=Coalesce(Sum("total"), Value(ZERO), output_field=MONEY),
                units=Sum("quantity"),
            )
            .order_by("-revenue", "product__sku")[: params.get("top", 5)]
        )
        by_region = (
            sales.values("region")
            .annotate(revenue=Coalesce(Sum("total"), Value(ZERO), output_field=MONEY))
            .order_by("region")
        )
        by_status = self.orders(params).values("status").annotate(n=Count("pk")).order_by("status")
        orders = totals["orders"]
        start, end = params.get("start_date"), params.get("end_date")
        return {
            "start_date": start.isoformat() if start else None,
            "end_date": end.isoformat() if end else None,
            "group_by": params.get("group_by", "day"),
            "groups": row_count,
            "total_revenue": money(totals["revenue"]),
            "order_count": orders,
            "units_sold": totals["units"],
            "unique_customers": totals["customers"],
            "average_order_value": money(totals["revenue"] / orders if orders else ZERO),
            "top_products": [
                {
                    "sku": p["product__sku"],
                    "name": p["product__name"],
                    "revenue": money(p["revenue"]),
                    "units": p["units"],
                }
                for p in top_products
            ],
            "revenue_by_region": {r["region"]: money(r["revenue"]) for r in by_region},
            "orders_by_status": {s["status"]: s["n"] for s in by_status},
        }
