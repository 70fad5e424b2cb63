"""Signature checks of docs/how-to/email-and-webhooks.md, with the standard library only.

This runs in the project that *receives* the webhooks (it may be another service).
"""

# --8<-- [start:verify]
import base64
import hashlib
import hmac
import time

#: How far a webhook-timestamp may be from now; older messages are replays.
TOLERANCE_SECONDS = 5 * 60


class MalformedWebhook(ValueError):
    """A header is missing or unreadable: not a webhook at all (400)."""


class InvalidSignature(ValueError):
    """Not signed with our secret, or signed too long ago (401)."""


def verify_signature(secret: str, headers, body: bytes) -> None:
    """Raise unless ``body`` was signed with ``secret`` less than 5 minutes ago.

    ``headers``: a case-insensitive mapping (Django's ``request.headers``);
    ``body``: the raw bytes (``request.body``), never re-encoded JSON.
    """
    try:
        msg_id = headers["webhook-id"]
        timestamp = headers["webhook-timestamp"]
        signatures = headers["webhook-signature"].split()
        sent_at = int(timestamp)
    except (KeyError, ValueError):
        raise MalformedWebhook("Missing or malformed webhook headers.") from None
    if abs(time.time() - sent_at) > TOLERANCE_SECONDS:
        raise InvalidSignature("The webhook timestamp is too far from now.")
    if secret.startswith("whsec_"):
        key = base64.b64decode(secret.removeprefix("whsec_"))
    else:
        key = secret.encode()
    signed = f"{msg_id}.{timestamp}.".encode() + body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest())
    for candidate in signatures:  # "v1,<base64>", space-separated (key rotation)
        version, _, signature = candidate.partition(",")
        if version == "v1" and hmac.compare_digest(signature.encode(), expected):
            return
    raise InvalidSignature("No valid webhook signature.")


# --8<-- [end:verify]
