"""The settings of docs/how-to/email-and-webhooks.md: mail through Amazon SES, webhooks.

A fragment of the sending project's settings module (the one that runs the
reports). tests/test_howto_email_and_webhooks.py checks every ASYNC_REPORTS
key is a setting of the package and sends a report e-mail with these values.
"""

# --8<-- [start:settings]
import os

# Amazon SES through its SMTP interface; any SMTP server is set up the same way.
EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
EMAIL_HOST = "email-smtp.eu-west-1.amazonaws.com"
EMAIL_PORT = 587
EMAIL_USE_TLS = True
EMAIL_HOST_USER = os.environ.get("SES_SMTP_USERNAME", "")
EMAIL_HOST_PASSWORD = os.environ.get("SES_SMTP_PASSWORD", "")
EMAIL_TIMEOUT = 10  # seconds: a hung mail server frees the worker
DEFAULT_FROM_EMAIL = "noreply@example.com"

ASYNC_REPORTS = {
    # Sender of report mails (DEFAULT_FROM_EMAIL when None): a verified SES identity.
    "EMAIL_FROM": "Reports <reports@example.com>",
    # Makes the links in mails and webhook payloads absolute.
    "BASE_URL": "https://reports.example.com",
    # Files up to this size are attached; larger ones are linked.
    "EMAIL_ATTACHMENT_MAX_BYTES": 10 * 1024 * 1024,
    # Only these domains may receive report mails (None: any).
    "EMAIL_ALLOWED_DOMAINS": ["example.com"],
    # Webhooks: only public addresses on ports 443 (and 80) unless listed here.
    "WEBHOOK_ALLOWED_NETWORKS": [],
    "WEBHOOK_ALLOWED_PORTS": [443],
    # Key of the secrets ad-hoc webhooks are signed with (SECRET_KEY when None):
    # set it so that rotating SECRET_KEY does not change them.
    "WEBHOOK_SECRET": os.environ.get("REPORTS_WEBHOOK_KEY"),
    "WEBHOOK_TIMEOUT": 5.0,  # seconds for a whole attempt
}
# --8<-- [end:settings]
