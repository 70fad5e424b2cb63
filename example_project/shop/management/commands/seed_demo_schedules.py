"""``manage.py seed_demo_schedules``: one report schedule of each frequency for the demo user.

Created through :func:`django_async_reports.schedules.create_schedule`, the
code path of the API and the admin, so they are validated (template variables,
the generators' parameters, cron expression, time zone, recipients) and get
their first ``next_run_at``:

* daily: the products at or below their reorder level, every morning;
* weekly: the seed's example as is ("Weekly Sales Report", last week's sales
  through ``{{last_week_start}}`` / ``{{last_week_end}}``, mailed to
  manager@example.com), Mondays at 08:00;
* monthly: last month's analytics (``{{last_month_start}}`` / ``{{last_month_end}}``)
  on the 1st, in the Europe/Berlin time zone;
* custom: ``*/5 * * * *``, a low-stock check every five minutes that mails
  only when some product is low (``skip_if_empty``), so ``celery beat`` visibly
  runs something while the demo is up.

Every schedule mails its report (``send_email``); with the default console
e-mail backend the worker prints the e-mails to its log. Running the command
again is harmless: a schedule whose title the user already has is left alone
(``--reset`` deletes the user's schedules with these titles first).
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from rest_framework.exceptions import ValidationError

from django_async_reports import schedules
from django_async_reports.models import ReportSchedule

#: The seed's schedule example, field for field (the API's POST body).
SEED_WEEKLY_SALES: dict[str, Any] = {
    "report_type": "sales",
    "title": "Weekly Sales Report",
    "frequency": "weekly",
    "parameters": {"start_date": "{{last_week_start}}", "end_date": "{{last_week_end}}"},
    "send_email": True,
    "email_recipients": ["manager@example.com"],
}


def demo_schedules(recipient: str) -> list[dict[str, Any]]:
    """The demo's schedules, one per frequency; ``recipient`` gets the non-seed ones."""
    return [
        {
            "report_type": "inventory",
            "title": "Daily Low Stock Report",
            "frequency": "daily",
            "time_of_day": "07:30",
            "parameters": {"below_reorder_only": True},
            "send_email": True,
            "email_recipients": [recipient],
        },
        dict(SEED_WEEKLY_SALES),
        {
            "report_type": "analytics",
            "title": "Monthly Sales Analytics",
            "frequency": "monthly",
            "day_of_month": 1,
            "time_of_day": "06:00",
            "timezone": "Europe/Berlin",
            "parameters": {
                "start_date": "{{last_month_start}}",
                "end_date": "{{last_month_end}}",
                "group_by": "day",
            },
            "send_email": True,
            "email_recipients": [recipient],
        },
        {
            "report_type": "inventory",
            "title": "Low Stock Check (every 5 minutes)",
            "frequency": "custom",
            "cron_expression": "*/5 * * * *",
            "priority": "low",
            "parameters": {"below_reorder_only": True},
            "send_email": True,
            "email_recipients": [recipient],
            "skip_if_empty": True,
        },
    ]


class Command(BaseCommand):
    help = "Create the demo user's report schedules (daily, weekly, monthly, custom cron)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument(
            "--username", default="demo", help="Owner of the schedules (default demo)."
        )
        parser.add_argument(
            "--email",
            default="demo@example.com",
            help="Recipient of the daily, monthly and custom schedules (default "
            "demo@example.com); the weekly one goes to manager@example.com, as in the seed.",
        )
        parser.add_argument(
            "--reset",
            action="store_true",
            help="Delete the user's schedules with these titles first (and their history).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        User = get_user_model()
        try:
            owner = User.objects.get(**{User.USERNAME_FIELD: options["username"]})
        except User.DoesNotExist:
            raise CommandError(
                f"No user {options['username']!r}: run `manage.py demo_token` first."
            ) from None
        wanted = demo_schedules(options["email"])
        created = []
        with transaction.atomic():
            mine = ReportSchedule.objects.filter(owner=owner)
            if options["reset"]:
                mine.filter(title__in=[s["title"] for s in wanted]).delete()
            existing = set(mine.values_list("title", flat=True))
            for fields in wanted:
                if fields["title"] in existing:
                    continue
                try:
                    created.append(schedules.create_schedule(owner=owner, **fields))
                except ValidationError as exc:
                    raise CommandError(f"{fields['title']}: {exc.detail}") from exc
        for schedule in created:
            self.stdout.write(
                f"Created {schedule.frequency} schedule {schedule.pk} {schedule.title!r}, "
                f"next run {schedule.next_run_at:%Y-%m-%d %H:%M %Z}."
            )
        skipped = len(wanted) - len(created)
        if skipped:
            self.stdout.write(
                f"{skipped} demo schedule(s) of {options['username']!r} already present; "
                "left alone (--reset recreates them)."
            )
