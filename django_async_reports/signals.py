"""Signals sent during a report's life. Receivers get ``sender=Report`` and ``report=``."""

from __future__ import annotations

from django.dispatch import Signal

# A report was created and its generation queued. Arguments: report.
report_requested = Signal()

# A worker started generating a report. Arguments: report.
report_started = Signal()

# A report finished and its file is downloadable (sent by the notification
# step of the chain, once per report). Arguments: report.
report_completed = Signal()

# A report failed for good (no retry left, a timeout, or a permanent error).
# Arguments: report, error (the message stored in report.error_message).
report_failed = Signal()

# A report was cancelled by its requester or an admin. Arguments: report.
report_cancelled = Signal()
