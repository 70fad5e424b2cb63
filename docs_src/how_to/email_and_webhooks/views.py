"""The webhook receiver of docs/how-to/email-and-webhooks.md: a Django view.

``settings.REPORTS_WEBHOOK_SECRET`` holds the ``whsec_...`` secret the reports
API shows (a setting of the receiving project, not of the package).
"""

# --8<-- [start:view]
import json
import logging

from django.conf import settings
from django.core.cache import cache
from django.http import HttpResponse, HttpResponseBadRequest
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from .verify import InvalidSignature, MalformedWebhook, verify_signature

logger = logging.getLogger(__name__)

#: How long a handled webhook-id is remembered: longer than the sender retries.
SEEN_IDS_SECONDS = 24 * 3600


def handle_report_event(event: dict) -> None:
    """Your code. Be quick: the sender gives up after WEBHOOK_TIMEOUT (5 s) and retries."""
    if event["type"] == "report.completed":
        logger.info(
            "Report %s is ready: %s", event["data"]["report_id"], event["data"]["download_url"]
        )


@csrf_exempt
@require_POST
def report_webhook(request):
    try:
        verify_signature(settings.REPORTS_WEBHOOK_SECRET, request.headers, request.body)
    except MalformedWebhook as exc:
        return HttpResponseBadRequest(str(exc))
    except InvalidSignature as exc:
        return HttpResponse(str(exc), status=401)
    # Replays and retries carry the same webhook-id: handle each id once.
    # cache.add() only stores a key that is not there yet (atomic on Redis).
    seen_key = f"report-webhook:{request.headers['webhook-id']}"
    if not cache.add(seen_key, True, timeout=SEEN_IDS_SECONDS):
        return HttpResponse(status=204)  # handled already: say so, do nothing
    try:
        handle_report_event(json.loads(request.body))
    except Exception:
        cache.delete(seen_key)  # not handled after all: let the retry in
        raise
    return HttpResponse(status=204)


# --8<-- [end:view]
