"""``manage.py queues``: how many messages wait in each report queue, and who consumes them."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from ...conf import report_settings
from ...exceptions import describe
from ...models import Report
from ...routing import queue_states
from ..commandline import to_json


class Command(BaseCommand):
    help = (
        "Show the ready messages and consumers of the report queues (QUEUE, "
        "HIGH_PRIORITY_QUEUE, and any --queue), read from the broker with a passive declare "
        "(no management plugin), with the count of pending reports."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--queue",
            action="append",
            default=[],
            metavar="NAME",
            help="Another queue to read too, a dead-letter queue say (repeat it).",
        )
        parser.add_argument(
            "--timeout",
            type=float,
            default=5.0,
            metavar="SECONDS",
            help="How long to try to reach the broker (default: 5).",
        )
        parser.add_argument(
            "--json", action="store_true", help="Print one JSON document on stdout."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        names = [report_settings.QUEUE, report_settings.HIGH_PRIORITY_QUEUE, *options["queue"]]
        names = list(dict.fromkeys(names))
        try:
            states = list(queue_states(names, timeout=options["timeout"]).values())
        except Exception as exc:
            raise CommandError(f"Could not read the queues: {describe(exc)}") from exc
        pending = Report.objects.filter(status=Report.Status.PENDING).count()
        processing = Report.objects.filter(status=Report.Status.PROCESSING).count()
        if options["json"]:
            self.stdout.write(
                to_json(
                    {
                        "queues": [
                            {
                                "name": state.name,
                                "exists": state.exists,
                                "messages": state.messages,
                                "consumers": state.consumers,
                            }
                            for state in states
                        ],
                        "reports": {"pending": pending, "processing": processing},
                    }
                )
            )
            return
        self.stdout.write(f"{'QUEUE':32}  {'MESSAGES':>8}  {'CONSUMERS':>9}")
        for state in states:
            if state.exists:
                self.stdout.write(f"{state.name:32}  {state.messages:8d}  {state.consumers:9d}")
            else:
                self.stdout.write(f"{state.name:32}  {'(does not exist)':>19}")
        self.stdout.write(f"Reports pending: {pending}; processing: {processing}.")
        if any(state.exists and state.messages and not state.consumers for state in states):
            self.stderr.write(self.style.WARNING("Messages wait in a queue no worker consumes."))
