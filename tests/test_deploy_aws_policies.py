"""The AWS documents of example_project/deploy/aws/ (docs/production/s3.md), checked.

- Their grammar: JSON, IAM policy basics (``Version`` 2012-10-17, a ``Statement`` list,
  ``Effect``, ``Action`` and ``Resource`` in each), and the lifecycle configuration against
  botocore's own model of ``PutBucketLifecycleConfiguration``, then applied to a real
  (moto) bucket.
- That the IAM policy grants exactly the S3 actions the package uses: every S3 call a
  real run makes is recorded (botocore's ``BaseClient._make_api_call``, which every
  client of every thread goes through, and the presigning of download URLs) while
  reports are streamed, uploaded in parts, uploaded whole, compressed, joined by
  server-side copies, aborted, downloaded, swept as orphans, cleaned up and erased, all
  against the moto server of ``tests/s3_server.py``. Each call is mapped to the IAM
  action that authorises it; the set must be the policy's, and every key under the
  policy's prefix.
"""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import botocore.session
import pytest
from botocore.client import BaseClient
from botocore.signers import RequestSigner
from botocore.validate import validate_parameters
from django.utils import timezone

from django_async_reports import routing, services
from django_async_reports.conf import DEFAULTS
from django_async_reports.downloads import storage_url
from django_async_reports.models import Report
from django_async_reports.retention import cleanup_expired_reports
from django_async_reports.services import s3_stream
from tests import deploy_files as files
from tests.factories import ReportFactory
from tests.helpers import run_report
from tests.s3_server import s3_client
from tests.testapp.reports import PacedReport

AWS = files.DEPLOY / "aws"
PREFIX = DEFAULTS["STORAGE_PREFIX"]  # the example project keeps the package's
WIDE = "x" * 1000  # ~1 kB rows: a few thousand make more than one 5 MiB part

# The IAM action that authorises each S3 operation (Amazon S3's "actions, resources and
# condition keys" table). UploadPartCopy reads its source and writes its target.
OPERATION_ACTIONS: dict[str, tuple[str, ...]] = {
    "PutObject": ("s3:PutObject",),
    "CreateMultipartUpload": ("s3:PutObject",),
    "UploadPart": ("s3:PutObject",),
    "CompleteMultipartUpload": ("s3:PutObject",),
    "UploadPartCopy": ("s3:PutObject", "s3:GetObject"),
    "GetObject": ("s3:GetObject",),
    "HeadObject": ("s3:GetObject",),
    "DeleteObject": ("s3:DeleteObject",),
    "DeleteObjects": ("s3:DeleteObject",),
    "AbortMultipartUpload": ("s3:AbortMultipartUpload",),
    "ListParts": ("s3:ListMultipartUploadParts",),
    "ListObjects": ("s3:ListBucket",),
    "ListObjectsV2": ("s3:ListBucket",),
    "HeadBucket": ("s3:ListBucket",),
    "ListMultipartUploads": ("s3:ListBucketMultipartUploads",),
}
BUCKET_LEVEL = {"s3:ListBucket", "s3:ListBucketMultipartUploads"}


def _load(name: str) -> dict[str, Any]:
    return json.loads((AWS / name).read_text())


def _actions(statement: dict[str, Any]) -> list[str]:
    action = statement["Action"]
    return [action] if isinstance(action, str) else list(action)


def _resources(statement: dict[str, Any]) -> list[str]:
    resource = statement["Resource"]
    return [resource] if isinstance(resource, str) else list(resource)


def _bucket() -> str:
    (config,) = files.objects("ConfigMap")
    return config["data"]["REPORTS_S3_BUCKET"]


# -- Grammar ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["iam-policy.json", "bucket-policy.json"])
def test_policies_follow_the_iam_grammar(name):
    policy = _load(name)
    assert policy["Version"] == "2012-10-17"
    assert isinstance(policy["Statement"], list) and policy["Statement"]
    sids = [statement["Sid"] for statement in policy["Statement"]]
    assert len(sids) == len(set(sids)), "Sids are unique"
    for statement in policy["Statement"]:
        assert statement["Effect"] in {"Allow", "Deny"}
        assert _actions(statement) and all(":" in action for action in _actions(statement))
        assert _resources(statement)
        assert all(r.startswith("arn:aws:") for r in _resources(statement))
        # An identity policy names no principal; a bucket policy must.
        assert ("Principal" in statement) == (name == "bucket-policy.json")


def test_the_documents_name_the_example_projects_bucket():
    bucket = _bucket()
    for name in ("iam-policy.json", "bucket-policy.json"):
        for statement in _load(name)["Statement"]:
            for resource in _resources(statement):
                if resource.startswith("arn:aws:s3:::"):
                    assert resource.split(":::", 1)[1].split("/", 1)[0] == bucket


def test_the_iam_policy_allows_only_and_is_scoped_to_the_report_prefix():
    statements = _load("iam-policy.json")["Statement"]
    assert {s["Effect"] for s in statements} == {"Allow"}
    bucket_arn = f"arn:aws:s3:::{_bucket()}"
    for statement in statements:
        actions = set(_actions(statement))
        assert not any("*" in action for action in actions), "no wildcard actions"
        if actions <= BUCKET_LEVEL:
            assert _resources(statement) == [bucket_arn]
        elif all(a.startswith("s3:") for a in actions):
            assert _resources(statement) == [f"{bucket_arn}/{PREFIX}/*"]
        else:
            # SSE-KMS: what S3 needs of the key to write (also in parts) and read objects.
            assert actions == {"kms:GenerateDataKey", "kms:Decrypt"}
            assert all(r.startswith("arn:aws:kms:") for r in _resources(statement))


def test_the_bucket_policy_refuses_requests_without_tls():
    statements = _load("bucket-policy.json")["Statement"]
    bucket_arn = f"arn:aws:s3:::{_bucket()}"
    (no_tls,) = [s for s in statements if s["Condition"].get("Bool", {}).get("aws:SecureTransport")]
    assert no_tls["Effect"] == "Deny" and no_tls["Principal"] == "*"
    assert no_tls["Condition"]["Bool"]["aws:SecureTransport"] == "false"
    assert _actions(no_tls) == ["s3:*"]
    assert sorted(_resources(no_tls)) == [bucket_arn, f"{bucket_arn}/*"]
    assert all(s["Effect"] == "Deny" for s in statements), "a bucket policy that only refuses"


def test_the_lifecycle_configuration_is_valid_for_s3():
    lifecycle = _load("lifecycle.json")
    operation = botocore.session.get_session().get_service_model("s3")
    shape = operation.operation_model("PutBucketLifecycleConfiguration").input_shape
    validate_parameters({"Bucket": _bucket(), "LifecycleConfiguration": lifecycle}, shape)
    ids = [rule["ID"] for rule in lifecycle["Rules"]]
    assert len(ids) == len(set(ids))
    for rule in lifecycle["Rules"]:
        assert rule["Status"] == "Enabled"
        assert rule["Filter"] == {"Prefix": f"{PREFIX}/"}, "the report files only"


def test_the_lifecycle_never_takes_what_the_package_still_uses():
    rules = _load("lifecycle.json")["Rules"]
    (abort,) = [
        r["AbortIncompleteMultipartUpload"] for r in rules if "AbortIncompleteMultipartUpload" in r
    ]
    # A streamed upload lasts one run at most, and a run fits in CONSUMER_TIMEOUT (E021).
    assert abort["DaysAfterInitiation"] * 86400 > DEFAULTS["CONSUMER_TIMEOUT"]
    # The backstop for files no row owns comes well after the package's own cleanup.
    (days,) = [r["Expiration"]["Days"] for r in rules if "Days" in r.get("Expiration", {})]
    assert days * 86400 >= 2 * (DEFAULTS["RETENTION_SECONDS"] + DEFAULTS["CLEANUP_INTERVAL"])
    # Deleted or replaced files leave no old versions behind on a versioned bucket.
    assert any(r.get("NoncurrentVersionExpiration") for r in rules)


def test_the_lifecycle_configuration_is_accepted_by_an_s3_server(s3_endpoint, s3_bucket):
    client = s3_client(s3_endpoint)
    client.put_bucket_lifecycle_configuration(
        Bucket=s3_bucket, LifecycleConfiguration=_load("lifecycle.json")
    )
    rules = client.get_bucket_lifecycle_configuration(Bucket=s3_bucket)["Rules"]
    assert sorted(r["ID"] for r in rules) == sorted(
        r["ID"] for r in _load("lifecycle.json")["Rules"]
    )


# -- The actions a real run uses ----------------------------------------------------------


@contextlib.contextmanager
def recorded_s3_calls() -> Iterator[list[tuple[str, dict[str, Any]]]]:
    """Every S3 operation made (and every URL presigned) inside the block, with its params."""
    calls: list[tuple[str, dict[str, Any]]] = []
    make_api_call = BaseClient._make_api_call
    presign = RequestSigner.generate_presigned_url

    def recording_call(self, operation_name, api_params):
        if self.meta.service_model.service_name == "s3":
            calls.append((operation_name, dict(api_params)))
        return make_api_call(self, operation_name, api_params)

    def recording_presign(self, request_dict, operation_name, *args, **kwargs):
        calls.append((operation_name, {"presigned_url": request_dict["url"]}))
        return presign(self, request_dict, operation_name, *args, **kwargs)

    BaseClient._make_api_call = recording_call
    RequestSigner.generate_presigned_url = recording_presign
    try:
        yield calls
    finally:
        BaseClient._make_api_call = make_api_call
        RequestSigner.generate_presigned_url = presign


@pytest.fixture
def part_messages(monkeypatch, captured_dispatches):
    """The part messages of partitioned reports, run here instead of being published."""
    sent: list[tuple] = []
    monkeypatch.setattr(routing, "send_task", lambda name, args, **options: sent.append(args))
    return sent


def _completed(report: Report) -> Report:
    report = run_report(report, notify=False)
    assert report.status == Report.Status.COMPLETED, report.error_message
    return report


def _partitioned(user, part_messages) -> Report:
    report = ReportFactory(
        user=user,
        report_type="partitioned_numbers",
        parameters={"count": 12_000, "text": WIDE, "parts": 2},
    )
    run = services.generate_or_split(services.claim_report(report.pk)).attempt
    for message in [m for m in part_messages if tuple(m[:2]) == (str(report.pk), run)]:
        services.run_part(*message)
    services.assemble(report.pk)
    services.post_process(report.pk)
    report.refresh_from_db()
    assert report.status == Report.Status.COMPLETED, report.error_message
    return report


def _run_everything(settings, monkeypatch, user, s3_endpoint, bucket, part_messages) -> None:
    """Each path of the package that touches S3, once."""
    settings.ASYNC_REPORTS = {**settings.ASYNC_REPORTS, "S3_PART_SIZE": s3_stream.MIN_PART_SIZE}
    paced = {"delay": 0.0, "text": WIDE}
    small = _completed(
        ReportFactory(user=user, report_type="paced", parameters={**paced, "count": 5})
    )
    _completed(ReportFactory(user=user, report_type="paced", parameters={**paced, "count": 6000}))
    _completed(
        ReportFactory(
            user=user, report_type="paced", format="xlsx", parameters={**paced, "count": 5}
        )
    )
    _completed(
        ReportFactory(
            user=user, report_type="paced", compress=True, parameters={**paced, "count": 5}
        )
    )
    joined = _partitioned(user, part_messages)
    assert (
        s3_client(s3_endpoint)
        .head_object(Bucket=bucket, Key=joined.result_file.name)["ETag"]
        .endswith('-2"')
    ), "joined by server-side part copies"

    def rows_then_boom(self, params):
        for n in range(6000):
            yield (n, n * n, WIDE)
        raise ConnectionError("the data source went away")

    failing = ReportFactory(user=user, report_type="paced", parameters={**paced, "count": 6000})
    with monkeypatch.context() as patch:
        patch.setattr(PacedReport, "rows", rows_then_boom)
        with pytest.raises(ConnectionError):
            services.generate(services.claim_report(failing.pk))

    assert storage_url(small).startswith(f"{s3_endpoint}/{bucket}/{PREFIX}/")
    services.sweep_orphan_files(delete=True, now=timezone.now() + timedelta(days=1))
    Report.objects.filter(pk=small.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert cleanup_expired_reports().files == 1
    services.erase_user_data(user)


def test_the_iam_policy_grants_exactly_the_s3_actions_a_real_run_uses(
    settings, monkeypatch, user, s3_endpoint, s3_reports, part_messages
):
    # Left by a worker killed mid-upload, and a file whose row is gone: the sweep's work.
    client = s3_client(s3_endpoint)
    dead_key = f"{PREFIX}/{user.pk}/{uuid.uuid4()}/1/gone.csv"
    client.create_multipart_upload(Bucket=s3_reports, Key=dead_key)
    client.put_object(
        Bucket=s3_reports, Key=f"{PREFIX}/{user.pk}/{uuid.uuid4()}/old.csv", Body=b"x"
    )

    with recorded_s3_calls() as calls:
        _run_everything(settings, monkeypatch, user, s3_endpoint, s3_reports, part_messages)

    operations = {operation for operation, _ in calls}
    assert operations - set(OPERATION_ACTIONS) == set(), "map the new operation to its action"
    # The run went through every path: one write of each kind, the abort, the listings.
    assert {
        "PutObject",
        "CreateMultipartUpload",
        "UploadPart",
        "UploadPartCopy",
        "CompleteMultipartUpload",
        "AbortMultipartUpload",
        "GetObject",
        "DeleteObject",
        "ListObjects",  # django-storages' listdir
        "ListMultipartUploads",
    } <= operations, " ".join(sorted(operations))
    used = {action for operation in operations for action in OPERATION_ACTIONS[operation]}
    granted = {
        action
        for statement in _load("iam-policy.json")["Statement"]
        for action in _actions(statement)
        if action.startswith("s3:")
    }
    assert granted == used
    # Every object the package touches is under the prefix the policy grants.
    for operation, params in calls:
        assert params.get("Bucket", s3_reports) == s3_reports
        if "Key" in params:
            assert params["Key"].startswith(f"{PREFIX}/"), (operation, params["Key"])
        if "CopySource" in params:
            assert params["CopySource"]["Key"].startswith(f"{PREFIX}/")
        if "presigned_url" in params:
            assert f"/{s3_reports}/{PREFIX}/" in params["presigned_url"]
