import pytest

from django_async_reports.models import Report
from tests.e2e.conftest import wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_report_completes_on_real_worker(worker, live_server, user, auth_client):
    import requests
    from rest_framework.authtoken.models import Token

    token = Token.objects.get(user=user).key if Token.objects.filter(user=user).exists() else Token.objects.create(user=user).key
    headers = {"Authorization": f"Bearer {token}"}
    r = requests.post(f"{live_server.url}/api/v1/reports/", json={"report_type": "numbers", "parameters": {"count": 5}}, headers=headers, timeout=10)
    assert r.status_code == 201, r.text
    rid = r.json()["id"]
    wait_for(lambda: Report.objects.get(pk=rid).status == "completed" or Report.objects.get(pk=rid).status == "failed", message="completion")
    report = Report.objects.get(pk=rid)
    assert report.status == "completed", report.error_message
    d = requests.get(f"{live_server.url}/api/v1/reports/{rid}/download/", headers=headers, timeout=10)
    assert d.status_code == 200
    assert d.content.decode().splitlines()[0] == "n,square,text"
