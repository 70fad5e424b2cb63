"""The "Cancellation in long generators" guide's generator (docs/how-to/cancellation.md).

``SupplierAPI`` stands for your own client of a slow external service: the
tests replace it with one that answers at once and counts its calls.
"""

from __future__ import annotations

from django_async_reports import ReportGenerator, register


class SupplierAPI:
    """Your client of the supplier's API; every call has its own timeout."""

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout

    def page_count(self) -> int:
        raise NotImplementedError("Calls the supplier's API.")

    def prices(self, page: int) -> list[dict]:
        raise NotImplementedError("Calls the supplier's API.")

    def close(self) -> None:
        raise NotImplementedError("Closes the connection.")


# --8<-- [start:generator]
@register
class SupplierPricesReport(ReportGenerator):
    report_type = "supplier_prices"
    label = "Supplier prices, ranked"
    columns = ["sku", "price", "rank"]

    def rows(self, params):
        api = SupplierAPI(timeout=30)  # no single call may block longer
        try:
            # Every page must be read before the first row (the rank needs them
            # all): minutes without a row, so the run loop cannot see a cancel.
            prices = []
            for page in range(1, api.page_count() + 1):
                self.raise_if_cancelled()  # stops here once the report is cancelled
                prices.extend(api.prices(page))
            prices.sort(key=lambda item: item["price"], reverse=True)
            for rank, item in enumerate(prices, start=1):
                yield (item["sku"], item["price"], rank)
        finally:
            api.close()  # on a cancel, an error or the end alike


# --8<-- [end:generator]
