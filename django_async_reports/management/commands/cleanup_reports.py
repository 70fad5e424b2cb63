"""``manage.py cleanup_reports``: delete expired reports and their files now."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from ...retention import cleanup_expired_reports, expired_reports


class Command(BaseCommand):
    help = (
        "Delete finished reports whose expires_at has passed, with their files, in batches. "
        "Safe to run while the periodic cleanup task runs."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--batch-size",
            type=int,
            default=None,
            help="Reports deleted per transaction (default: ASYNC_REPORTS['CLEANUP_BATCH_SIZE']).",
        )
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help="Only count the expired reports; delete nothing.",
        )

    def handle(self, *args: Any, batch_size: int | None, dry_run: bool, **options: Any) -> None:
        if batch_size is not None and batch_size < 1:
            from django.core.management.base import CommandError

            raise CommandError("--batch-size must be at least 1.")
        if dry_run:
            count = expired_reports().count()
            self.stdout.write(f"{count} expired report(s) would be deleted.")
            return
        result = cleanup_expired_reports(batch_size=batch_size)
        self.stdout.write(
            self.style.SUCCESS(
                f"Deleted {result.reports} expired report(s) and {result.files} file(s) "
                f"in {result.batches} batch(es)."
            )
        )
        if result.kept:
            self.stderr.write(
                self.style.WARNING(
                    f"Kept {result.kept} expired report(s) whose file could not be deleted "
                    "(see the log); the next run tries again."
                )
            )
