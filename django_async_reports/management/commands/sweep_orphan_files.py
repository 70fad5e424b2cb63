"""``manage.py sweep_orphan_files``: list (or delete) report files no report row owns."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from ... import services


class Command(BaseCommand):
    help = (
        "List the report files in storage whose report row no longer exists (a deleted user "
        "or report whose file the storage refused to delete). A dry run unless --delete is "
        "given. Files younger than ORPHAN_GRACE_SECONDS are left alone. On S3, incomplete "
        "multipart uploads of no running report are aborted too."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--delete", action="store_true", help="Delete the orphan files (default: list them)."
        )
        parser.add_argument(
            "--grace",
            type=float,
            default=None,
            metavar="SECONDS",
            help="Leave alone files younger than this (default: ORPHAN_GRACE_SECONDS; 0: none).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        grace = options["grace"]
        if grace is not None and grace < 0:
            raise CommandError("--grace must be a number of seconds >= 0.")
        delete = bool(options["delete"])
        result = services.sweep_orphan_files(delete=delete, grace_seconds=grace)
        if options["verbosity"] >= 1:
            for path in result.orphans:
                self.stdout.write(path)
        verb = "deleted" if delete else "would be deleted (dry run: add --delete)"
        count = result.deleted if delete else len(result.orphans)
        self.stdout.write(
            f"{len(result.orphans)} orphan file(s); {count} {verb}; {result.young} younger than "
            f"the grace period, kept; {result.unrecognised} unrecognised, kept; "
            f"{result.owned} owned by a report."
        )
        if result.stale_uploads:
            done = "aborted" if delete else "would be aborted"
            count = result.aborted_uploads if delete else len(result.stale_uploads)
            self.stdout.write(
                f"{len(result.stale_uploads)} incomplete S3 upload(s) of no running report; "
                f"{count} {done}."
            )
        if result.failed:
            self.stderr.write(
                self.style.WARNING(
                    f"The storage refused to delete {result.failed} file(s) or upload(s)."
                )
            )
