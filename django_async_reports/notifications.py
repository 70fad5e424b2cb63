"""E-mail to the requester of a report: now part of :mod:`.delivery.email`, kept for imports."""

from __future__ import annotations

from .delivery.email import download_url, send_report_email

__all__ = ["download_url", "send_report_email"]
