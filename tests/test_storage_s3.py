"""Report files on S3 through django-storages, against a real moto server on loopback.

Also the key layout (``report_file_name``), which must hold on any storage.
"""

from __future__ import annotations

import gzip
import os
import posixpath
import uuid

import pytest
import requests
from django.core.files.base import ContentFile
from django.core.files.storage import FileSystemStorage

from django_async_reports.storage import (
    report_file_name,
    report_storage,
    safe_filename,
    storage_is_remote,
)
from tests.s3_server import (
    list_keys,
    s3_client,
    s3_storage_settings,
)

REPORT_ID = uuid.UUID("6f1c2d3e-4b5a-4c6d-8e7f-901234567890")


@pytest.fixture
def s3_reports(settings, s3_endpoint, s3_bucket):
    """Report files go to the moto bucket through the "reports" alias."""
    settings.STORAGES = {
        **settings.STORAGES,
        "reports": s3_storage_settings(s3_endpoint, s3_bucket),
    }
    settings.ASYNC_REPORTS = {**settings.ASYNC_REPORTS, "STORAGE": "reports"}
    return s3_bucket


# -- round trip --------------------------------------------------------------------
def test_saved_file_lands_under_its_exact_key_and_reads_back(s3_endpoint, s3_reports):
    key = report_file_name(42, REPORT_ID, "Q4 Sales", "csv")
    assert key == f"reports/42/{REPORT_ID}/q4-sales.csv"

    stored = report_storage.save(key, ContentFile(b"n,square\r\n1,1\r\n"))

    assert stored == key
    assert list_keys(s3_endpoint, s3_reports) == [key]
    body = s3_client(s3_endpoint).get_object(Bucket=s3_reports, Key=key)["Body"].read()
    assert body == b"n,square\r\n1,1\r\n"
    with report_storage.open(key, "rb") as fh:
        assert fh.read() == b"n,square\r\n1,1\r\n"
    assert report_storage.size(key) == 15
    assert report_storage.exists(key)


def test_saving_a_key_again_replaces_the_object(s3_endpoint, s3_reports):
    # file_overwrite=True: a retried task rewrites its own key, no second object.
    key = report_file_name(42, REPORT_ID, "Q4 Sales", "csv")
    report_storage.save(key, ContentFile(b"first"))

    assert report_storage.save(key, ContentFile(b"second")) == key

    assert list_keys(s3_endpoint, s3_reports) == [key]
    with report_storage.open(key, "rb") as fh:
        assert fh.read() == b"second"


def test_compressed_file_is_stored_without_content_encoding(s3_endpoint, s3_reports):
    key = report_file_name(42, REPORT_ID, "Q4 Sales", "csv.gz")
    payload = gzip.compress(b"n,square\r\n1,1\r\n", mtime=0)
    report_storage.save(key, ContentFile(payload))

    head = s3_client(s3_endpoint).head_object(Bucket=s3_reports, Key=key)

    assert key.endswith("/q4-sales.csv.gz")
    assert head["ContentType"] == "application/octet-stream"
    assert "ContentEncoding" not in head
    with report_storage.open(key, "rb") as fh:
        assert fh.read() == payload


def test_without_object_parameters_a_gz_key_gets_content_encoding(settings, s3_endpoint, s3_bucket):
    # Why PRIVATE_BUCKET_OPTIONS sets ContentType: django-storages guesses from the
    # name, and Content-Encoding: gzip makes HTTP clients unpack a .gz download.
    settings.STORAGES = {
        **settings.STORAGES,
        "reports": s3_storage_settings(s3_endpoint, s3_bucket, object_parameters={}),
    }
    settings.ASYNC_REPORTS = {**settings.ASYNC_REPORTS, "STORAGE": "reports"}
    key = report_storage.save("reports/1/x/a.csv.gz", ContentFile(gzip.compress(b"a")))

    head = s3_client(s3_endpoint).head_object(Bucket=s3_bucket, Key=key)

    assert (head["ContentType"], head["ContentEncoding"]) == ("text/csv", "gzip")


# -- privacy -----------------------------------------------------------------------
def test_bucket_and_objects_are_private(s3_endpoint, s3_reports):
    key = report_storage.save(
        report_file_name(42, REPORT_ID, "Payroll", "csv"), ContentFile(b"secret,1\r\n")
    )
    client = s3_client(s3_endpoint)

    unsigned = requests.get(f"{s3_endpoint}/{s3_reports}/{key}", timeout=10)
    assert unsigned.status_code == 403
    assert b"secret" not in unsigned.content

    presigned = report_storage.url(key)
    assert "X-Amz-Signature=" in presigned
    stripped = presigned.split("?", 1)[0]
    assert stripped == f"{s3_endpoint}/{s3_reports}/{key}"
    assert requests.get(stripped, timeout=10).status_code == 403
    signed = requests.get(presigned, timeout=10)
    assert (signed.status_code, signed.content) == (200, b"secret,1\r\n")

    grants = client.get_object_acl(Bucket=s3_reports, Key=key)["Grants"]
    assert [g["Permission"] for g in grants] == ["FULL_CONTROL"]
    assert all(g["Grantee"]["Type"] == "CanonicalUser" for g in grants)
    block = client.get_public_access_block(Bucket=s3_reports)
    assert all(block["PublicAccessBlockConfiguration"].values())


# -- delete ------------------------------------------------------------------------
def test_delete_through_storage_removes_the_object(s3_endpoint, s3_reports):
    keep = report_storage.save(report_file_name(42, REPORT_ID, "Keep", "csv"), ContentFile(b"k"))
    gone = report_storage.save(report_file_name(42, REPORT_ID, "Gone", "csv"), ContentFile(b"g"))
    assert list_keys(s3_endpoint, s3_reports) == sorted([keep, gone])

    report_storage.delete(gone)

    assert list_keys(s3_endpoint, s3_reports) == [keep]
    assert not report_storage.exists(gone)
    report_storage.delete(gone)  # deleting a missing key is not an error
    assert list_keys(s3_endpoint, s3_reports) == [keep]


# -- remote or local ----------------------------------------------------------------
def test_s3_is_remote_and_the_file_system_is_not(s3_reports):
    assert storage_is_remote() is True
    assert storage_is_remote(FileSystemStorage(location="/tmp")) is False


def test_default_file_system_report_storage_is_not_remote():
    assert storage_is_remote() is False


# -- key layout ----------------------------------------------------------------------
HOSTILE_TITLES = [
    ("../../etc/passwd", "etcpasswd.csv"),
    ("a/b\\c", "abc.csv"),
    ("..", "report.csv"),
    ("/absolute/path", "absolutepath.csv"),
    ("Résumé 東京 ✓", "resume.csv"),
    ("", "report.csv"),
    ("\x00\n\r", "report.csv"),
    ("x" * 300, "x" * 60 + ".csv"),
]


@pytest.mark.parametrize(("title", "basename"), HOSTILE_TITLES)
def test_hostile_titles_stay_inside_the_report_folder(title, basename):
    key = report_file_name(7, REPORT_ID, title, "csv")

    assert key == f"reports/7/{REPORT_ID}/{basename}"
    assert posixpath.normpath(key) == key
    assert ".." not in key.split("/")


@pytest.mark.parametrize(("title", "basename"), HOSTILE_TITLES)
def test_hostile_titles_land_inside_the_report_folder_on_s3(
    s3_endpoint, s3_reports, title, basename
):
    stored = report_storage.save(report_file_name(7, REPORT_ID, title, "csv.gz"), ContentFile(b"x"))

    assert stored == f"reports/7/{REPORT_ID}/{basename}.gz"
    assert list_keys(s3_endpoint, s3_reports) == [stored]


@pytest.mark.parametrize(("title", "basename"), HOSTILE_TITLES[:4])
def test_hostile_titles_land_inside_the_report_folder_on_disk(settings, title, basename):
    stored = report_storage.save(report_file_name(7, REPORT_ID, title, "csv"), ContentFile(b"x"))

    path = report_storage.path(stored)
    folder = os.path.join(os.path.realpath(settings.MEDIA_ROOT), "reports", "7", str(REPORT_ID))
    assert os.path.realpath(path) == os.path.join(folder, basename)


@pytest.mark.parametrize(
    ("prefix", "expected"),
    [
        ("reports", "reports/7"),
        ("/exports/2024/", "exports/2024/7"),
        ("exports//../x/.", "exports/x/7"),
        ("", "7"),
        ("/", "7"),
    ],
)
def test_storage_prefix_never_makes_an_absolute_or_climbing_key(settings, prefix, expected):
    settings.ASYNC_REPORTS = {**settings.ASYNC_REPORTS, "STORAGE_PREFIX": prefix}

    assert report_file_name(7, REPORT_ID, "T", "csv") == f"{expected}/{REPORT_ID}/t.csv"


def test_user_id_is_slugified_and_report_id_must_be_a_uuid():
    assert report_file_name("../Admin User", REPORT_ID, "T", "csv").startswith(
        f"reports/admin-user/{REPORT_ID}/"
    )
    assert report_file_name(7, str(REPORT_ID), "T", "csv") == f"reports/7/{REPORT_ID}/t.csv"
    with pytest.raises(ValueError):
        report_file_name(7, "../../x", "T", "csv")  # type: ignore[arg-type]


@pytest.mark.parametrize("extension", ["", "../csv", "csv/..", "c sv", "csv.", ".csv", "csv\n"])
def test_extension_must_be_letters_digits_and_dots(extension):
    with pytest.raises(ValueError, match="Invalid report file extension"):
        safe_filename("title", extension)


@pytest.mark.parametrize("extension", ["csv", "xlsx", "csv.gz", "ndjson"])
def test_valid_extensions(extension):
    assert safe_filename("Q4 Sales", extension) == f"q4-sales.{extension}"
