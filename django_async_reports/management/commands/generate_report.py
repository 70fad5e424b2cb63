"""``manage.py generate_report``: request a report from the shell, wait for it, save its file."""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from ... import progress, services
from ...models import Report
from ...storage import download_filename
from ..commandline import (
    check_report_type,
    command_errors,
    find_user,
    parse_params,
    report_as_dict,
    to_json,
)
from ..progress_bar import render, snapshot

FINISHED = {str(status) for status in Report.FINISHED_STATUSES}


class Command(BaseCommand):
    help = (
        "Request a report for a user through the service layer, as the API does. With "
        "--wait, follow its progress (rows, rate, time left) until it finishes; with "
        "--output, write its file to a path."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--type", required=True, dest="report_type", help="Report type.")
        parser.add_argument(
            "--param",
            action="append",
            default=[],
            metavar="KEY=VALUE",
            help="A parameter (repeat it); a value that parses as JSON is JSON, else text.",
        )
        parser.add_argument("--user", required=True, help="The owner: a username or a user id.")
        parser.add_argument("--format", default=None, help="File format (default: the type's).")
        parser.add_argument("--compress", action="store_true", help="Gzip the file.")
        parser.add_argument(
            "--priority",
            default="normal",
            choices=[str(value) for value in Report.Priority.values],
            help="Queue priority (default: normal).",
        )
        parser.add_argument("--title", default="", help="Title (default: the type's label).")
        parser.add_argument(
            "--wait", action="store_true", help="Wait until the report finishes, showing progress."
        )
        parser.add_argument(
            "--output",
            default=None,
            metavar="PATH",
            help="Write the finished file to PATH (a folder: the file's own name in it); "
            "implies --wait. A compressed report is written gzipped.",
        )
        parser.add_argument(
            "--timeout",
            type=float,
            default=None,
            metavar="SECONDS",
            help="Stop waiting after this long (exit code 1; the report goes on).",
        )
        parser.add_argument(
            "--interval",
            type=float,
            default=0.5,
            metavar="SECONDS",
            help="How often to poll while waiting (default: 0.5).",
        )
        parser.add_argument(
            "--no-progress", action="store_true", help="Wait without drawing the progress bar."
        )
        parser.add_argument(
            "--json", action="store_true", help="Print one JSON document on stdout."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        as_json = bool(options["json"])
        output = options["output"]
        wait = bool(options["wait"] or output)
        if options["timeout"] is not None and options["timeout"] <= 0:
            raise CommandError("--timeout must be a number of seconds > 0.")
        if options["interval"] <= 0:
            raise CommandError("--interval must be a number of seconds > 0.")
        report_type = check_report_type(options["report_type"])
        user = find_user(str(options["user"]))
        parameters = parse_params(options["param"])
        with command_errors():
            report = services.request_report(
                user=user,
                report_type=report_type,
                parameters=parameters,
                title=options["title"],
                priority=options["priority"],
                format=options["format"],
                compress=bool(options["compress"]),
            )
        if not as_json:
            self.stdout.write(
                f"Requested report {report.pk} ({report.report_type}, {report.format}) "
                f"for {user.get_username()}."
            )
        if not wait:
            if as_json:
                self.stdout.write(to_json(report_as_dict(report)))
            return
        show_bar = not options["no_progress"] and options["verbosity"] >= 1
        report, error = self.wait(report, options["timeout"], options["interval"], show_bar)
        written = None
        if error is None and output:
            written = self.write_file(report, Path(output))
        if as_json:
            self.stdout.write(to_json({**report_as_dict(report), "output": written}))
        if error is not None:
            raise CommandError(error)
        if not as_json:
            rows = (report.result_data or {}).get("row_count")
            self.stdout.write(
                self.style.SUCCESS(f"Report {report.pk} completed: {rows} row(s).")
                + (f" Written to {written}." if written else "")
            )

    def wait(
        self, report: Report, timeout: float | None, interval: float, show_bar: bool
    ) -> tuple[Report, str | None]:
        """Poll until ``report`` finishes; the report and the error to exit with, if any."""
        deadline = None if timeout is None else time.monotonic() + timeout
        tty = show_bar and self.stderr.isatty()
        last_line = ""
        try:
            while True:
                try:
                    report.refresh_from_db()
                except Report.DoesNotExist:
                    raise CommandError(f"Report {report.pk} was deleted while waiting.") from None
                if show_bar:
                    state = snapshot(
                        status=report.status,
                        percent=100
                        if report.status == Report.Status.COMPLETED
                        else report.progress,
                        message=report.progress_message,
                        started_at=report.started_at,
                        now=timezone.now(),
                        cached=progress.read_cache(report.pk) if report.is_active else None,
                    )
                    line = render(state)
                    if tty:
                        self.stderr.write("\r" + line, ending="")
                    elif line != last_line:
                        self.stderr.write(line)
                    last_line = line
                if report.status in FINISHED:
                    break
                if deadline is not None and time.monotonic() >= deadline:
                    return report, (
                        f"Timed out waiting for report {report.pk} ({report.status}, "
                        f"{report.progress}%); it goes on: follow it with "
                        f"`manage.py reports show {report.pk}`."
                    )
                time.sleep(interval)
        except KeyboardInterrupt:
            return report, (
                f"Stopped waiting; report {report.pk} goes on (cancel it with "
                f"`manage.py reports cancel {report.pk}`)."
            )
        finally:
            if tty:
                self.stderr.write("")
        if report.status == Report.Status.FAILED:
            return report, f"Report {report.pk} failed: {report.error_message}"
        if report.status == Report.Status.CANCELLED:
            return report, f"Report {report.pk} was cancelled."
        return report, None

    def write_file(self, report: Report, path: Path) -> str:
        """Copy the report's stored file to ``path`` (into it, if a folder); the path written."""
        if not report.result_file:
            raise CommandError(f"Report {report.pk} has no file to write.")
        if path.is_dir():
            path = path / download_filename(report)
        path = path.resolve()
        if not path.parent.is_dir():
            raise CommandError(f"No folder {path.parent} to write the file in.")
        # Into a temporary file first: a copy that fails half-way leaves no partial file.
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
        try:
            with os.fdopen(fd, "wb") as target, report.result_file.open("rb") as source:
                shutil.copyfileobj(source, target, 1024 * 1024)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        finally:
            report.result_file.close()
        return str(path)
