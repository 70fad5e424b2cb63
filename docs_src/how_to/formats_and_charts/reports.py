"""The generator of docs/how-to/formats-and-charts.md: three formats, three charts.

Importing this module registers the generator (``@register``), as a host's
``reports.py`` does; the tests import it only while they run and unregister it after.
"""

# --8<-- [start:generator]
import datetime
from decimal import Decimal

from django_async_reports import Chart, ReportGenerator, register


@register
class RegionSalesReport(ReportGenerator):
    report_type = "region_sales"
    label = "Sales per region"
    # The header row, in this order; each row is a sequence in the same order.
    columns = ["region", "day", "orders", "revenue"]
    # Offered in these formats only (those installed here): a request for
    # "json" is refused with a 400 under "format".
    formats = ["csv", "xlsx", "pdf"]
    charts = [
        # Over the rows: labels from one column, one series per value column.
        Chart.bar("Revenue per region", category="region", values=["revenue"]),
        Chart.line("Orders per region", category="region", values=["orders"]),
        # Over summary()["orders_by_status"], a {label: number} mapping.
        Chart.pie("Orders per status", summary_key="orders_by_status"),
    ]

    def rows(self, params):
        # Keep the Python types: XLSX writes dates as dates, Decimals as numbers.
        yield ("north", datetime.date(2026, 1, 5), 12, Decimal("1234.50"))
        yield ("south", datetime.date(2026, 1, 6), 7, Decimal("99.99"))
        yield ("east", datetime.date(2026, 1, 7), 3, Decimal("410.00"))

    def summary(self, params, row_count):
        # Decimals as strings: the summary is stored as JSON.
        return {
            "total_revenue": "1744.49",
            "orders_by_status": {"paid": 15, "shipped": 4, "cancelled": 3},
        }


# --8<-- [end:generator]
