"""``manage.py sweep_reports``: send unsent steps and take back lost runs now."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from ... import services


class Command(BaseCommand):
    help = (
        "Send the report messages the broker did not confirm (queued while it was down) and "
        "queue again the reports whose run was lost. Beat does this every SWEEP_INTERVAL "
        "seconds; safe to run at the same time."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        result = services.sweep()
        self.stdout.write(
            f"Sent {result.sent} step(s); queued {result.requeued} lost run(s) again; "
            f"failed {result.failed}; cleared {result.cleared} step(s) no longer due."
        )
        if result.broker_down:
            warning = "The broker refused a message: the rest waits for the next sweep."
            self.stderr.write(self.style.WARNING(warning))
