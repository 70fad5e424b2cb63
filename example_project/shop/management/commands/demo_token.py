"""``manage.py demo_token``: make sure the demo user exists and print its API token.

Only the token key goes to standard output, so scripts can capture it::

    TOKEN=$(python manage.py demo_token)
    curl -H "Authorization: Bearer $TOKEN" http://localhost:8000/api/v1/reports/

The user is a superuser (for ``/admin/``); its password is reset to the given
one on every run, and its token is kept, so running it again is harmless.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction
from rest_framework.authtoken.models import Token


class Command(BaseCommand):
    help = "Create (or update) the demo superuser and print its API token key."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--username", default="demo", help="Default: demo.")
        parser.add_argument("--password", default="demo", help="Default: demo.")
        parser.add_argument(
            "--email",
            default="demo@example.com",
            help="Where report e-mails go (default demo@example.com).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        User = get_user_model()
        with transaction.atomic():
            user, created = User.objects.get_or_create(
                **{User.USERNAME_FIELD: options["username"]},
                defaults={"email": options["email"]},
            )
            user.email = user.email or options["email"]
            user.is_staff = user.is_superuser = user.is_active = True
            user.set_password(options["password"])
            user.save()
            token, _ = Token.objects.get_or_create(user=user)
        verb = "Created" if created else "Updated"
        self.stderr.write(
            f"{verb} superuser {options['username']!r} (password {options['password']!r})."
        )
        self.stdout.write(token.key)
