"""The signature check of docs/how-to/email-and-webhooks.md by the ``standardwebhooks`` package."""

# --8<-- [start:library]
from standardwebhooks import Webhook, WebhookVerificationError

from .verify import InvalidSignature


def verify_with_library(secret: str, headers, body: bytes) -> None:
    """The same checks by the ``standardwebhooks`` package (5 minutes' tolerance too)."""
    try:
        Webhook(secret).verify(body, dict(headers), json_parse=False)
    except (WebhookVerificationError, ValueError) as exc:  # ValueError: unreadable values
        raise InvalidSignature(str(exc)) from None


# --8<-- [end:library]
