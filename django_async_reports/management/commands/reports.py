"""``manage.py reports``: list, show, cancel, retry and requeue reports; list stuck ones."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from ... import services
from ...models import Report
from ..commandline import (
    command_errors,
    find_report,
    find_user,
    report_as_dict,
    to_json,
)

STATUSES = [str(value) for value in Report.Status.values]


class Command(BaseCommand):
    help = (
        "Operate on reports through the service layer: list, show, cancel, retry (failed or "
        "cancelled), requeue (pending, its message lost or dead-lettered), stuck (what no "
        "worker is moving). Every subcommand takes --json."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        common = CommandParser(add_help=False)
        common.add_argument(
            "--json", action="store_true", help="Print one JSON document on stdout."
        )
        actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)

        listing = actions.add_parser("list", parents=[common], help="Reports, newest first.")
        listing.add_argument("--status", choices=STATUSES, action="append", default=[])
        listing.add_argument("--type", dest="report_type", default=None, help="Report type.")
        listing.add_argument("--user", default=None, help="Owner: a username or a user id.")
        listing.add_argument("--limit", type=int, default=50, help="At most this many (50).")

        for name, text in (
            ("show", "Everything about one report, its error detail included."),
            ("cancel", "Cancel a pending or processing report."),
            ("retry", "Queue a failed or cancelled report again (same row, new task id)."),
            ("requeue", "Send a pending report's generation again (its message was lost)."),
        ):
            action = actions.add_parser(name, parents=[common], help=text)
            action.add_argument("report_id", metavar="ID", help="The report's id.")

        stuck = actions.add_parser(
            "stuck",
            parents=[common],
            help="Processing reports past their hard limit + STUCK_MARGIN; pending ones the "
            "broker refused, or (with --pending-after) unchanged for that long.",
        )
        stuck.add_argument(
            "--pending-after",
            type=float,
            default=600.0,
            metavar="SECONDS",
            help="Count a pending report unchanged this long as stuck (default 600; 0: off).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        action = options["action"]
        self.as_json = bool(options.get("json"))
        if action == "list":
            self.list(options)
        elif action == "stuck":
            self.stuck(options)
        else:
            report = find_report(options["report_id"])
            getattr(self, action)(report)

    # -- subcommands -----------------------------------------------------------------
    def list(self, options: dict[str, Any]) -> None:
        if options["limit"] < 1:
            raise CommandError("--limit must be at least 1.")
        reports = Report.objects.select_related("user").order_by("-created_at")
        if options["status"]:
            reports = reports.filter(status__in=options["status"])
        if options["report_type"]:
            reports = reports.filter(report_type=options["report_type"])
        if options["user"]:
            reports = reports.filter(user=find_user(options["user"]))
        found = list(reports[: options["limit"]])
        if self.as_json:
            self.stdout.write(to_json([report_as_dict(report) for report in found]))
            return
        header = f"{'ID':36}  {'STATUS':10}  {'TYPE':16}  {'USER':16}  {'%':>3}  CREATED"
        self.stdout.write(header)
        for report in found:
            self.stdout.write(
                f"{report.pk!s:36}  {report.status:10}  {report.report_type[:16]:16}  "
                f"{report.user.get_username()[:16]:16}  {report.progress:3d}  "
                f"{report.created_at:%Y-%m-%d %H:%M:%S}"
            )
        self.stdout.write(f"{len(found)} report(s).")

    def show(self, report: Report) -> None:
        data = report_as_dict(report, detail=True)
        if self.as_json:
            self.stdout.write(to_json(data))
            return
        for key, value in data.items():
            if key == "user":
                value = f"{value['username']} (id {value['id']})"
            elif isinstance(value, (dict, list)):
                value = to_json(value, indent=None)
            self.stdout.write(f"{key + ':':18} {'' if value is None else value}")

    def cancel(self, report: Report) -> None:
        with command_errors():
            report = services.cancel_report(report)
        self.done(report, "Cancelled")

    def retry(self, report: Report) -> None:
        with command_errors():
            report = services.retry_report(report)
        self.done(report, "Queued again (retry)")

    def requeue(self, report: Report) -> None:
        with command_errors():
            report = services.requeue_report(report)
        self.done(report, "Sent its generation again")

    def stuck(self, options: dict[str, Any]) -> None:
        after = options["pending_after"]
        if after < 0:
            raise CommandError("--pending-after must be a number of seconds >= 0.")
        found = services.stuck_reports(pending_after=after or None)
        if self.as_json:
            self.stdout.write(
                to_json(
                    [
                        {
                            **report_as_dict(item.report),
                            "reason": item.reason,
                            "seconds": round(item.seconds, 1),
                            "explanation": item.explanation,
                        }
                        for item in found
                    ]
                )
            )
            return
        for item in found:
            self.stdout.write(
                f"{item.report.pk}  {item.report.status:10}  {item.report.report_type}: "
                f"{item.explanation}"
            )
        self.stdout.write(f"{len(found)} stuck report(s).")

    def done(self, report: Report, what: str) -> None:
        if self.as_json:
            self.stdout.write(to_json(report_as_dict(report)))
        else:
            self.stdout.write(self.style.SUCCESS(f"{what}: report {report.pk} is {report.status}."))
