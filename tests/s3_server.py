"""A real S3-compatible server on 127.0.0.1 for the storage tests: moto in server mode.

moto runs as a subprocess (``python -m moto.server``) on a free loopback port and
speaks the S3 HTTP API, so django-storages, boto3 and ``requests`` reach it over
real HTTP, as they would reach AWS. Usage::

    from tests.s3_server import create_private_bucket, s3_server, s3_storage_settings

    with s3_server() as endpoint:                      # "http://127.0.0.1:<port>"
        bucket = create_private_bucket(endpoint)       # a fresh, private bucket
        STORAGES["reports"] = s3_storage_settings(endpoint, bucket)

In a test module, wrap ``s3_server()`` in a module- or session-scoped fixture.
Worker subprocesses of end-to-end tests reach the same endpoint; give them the
alias dict (it is JSON-serialisable) and ``S3_CREDENTIALS``.

Known limit: moto's default mode checks neither the signature nor the expiry of
presigned URLs. It does refuse unsigned requests for private objects (403).
The credentials are moto's dummy ones and are passed explicitly to each
client: nothing is put in this process's environment.
"""

from __future__ import annotations

import contextlib
import copy
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from typing import Any

S3_REGION = "us-east-1"
S3_CREDENTIALS = {"access_key": "testing", "secret_key": "testing"}

# The options a private report bucket should be used with; see docs/storage.md.
PRIVATE_BUCKET_OPTIONS: dict[str, Any] = {
    # No ACL on upload: objects stay private, as the bucket is.
    "default_acl": None,
    # url() returns presigned URLs (SigV4, so they carry X-Amz-Expires).
    "querystring_auth": True,
    "signature_version": "s3v4",
    # Lifetime of a URL minted without an explicit ``expire``; downloads pass
    # DOWNLOAD_URL_EXPIRES explicitly.
    "querystring_expire": 300,
    # Keys are unique per report; a retried task replaces its own file instead
    # of storing a second copy beside it.
    "file_overwrite": True,
    # Without it django-storages guesses Content-Encoding: gzip from a ".gz" name
    # and clients would unpack a file meant to be downloaded compressed.
    "object_parameters": {"ContentType": "application/octet-stream"},
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _answers(endpoint: str) -> bool:
    try:
        with urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=1) as response:
            return bool(response.status < 500)
    except urllib.error.HTTPError as exc:
        return exc.code < 500
    except OSError:
        return False


@contextlib.contextmanager
def s3_server(timeout: float = 30.0) -> Iterator[str]:
    """Run moto's S3 server on a free loopback port; yield its endpoint URL.

    The server is terminated (then killed if it lingers) on exit. Its output
    goes to a temporary log, shown in the error if it does not come up.
    """
    env = {
        **os.environ,
        "AWS_ACCESS_KEY_ID": S3_CREDENTIALS["access_key"],
        "AWS_SECRET_ACCESS_KEY": S3_CREDENTIALS["secret_key"],
        "AWS_DEFAULT_REGION": S3_REGION,
    }
    with tempfile.TemporaryFile() as log:
        for _attempt in range(3):  # the port may be taken between choosing and binding it
            port = free_port()
            endpoint = f"http://127.0.0.1:{port}"
            process = subprocess.Popen(
                [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
            )
            deadline = time.monotonic() + timeout
            while process.poll() is None and time.monotonic() < deadline:
                if _answers(endpoint):
                    break
                time.sleep(0.1)
            if process.poll() is None and _answers(endpoint):
                break
            _stop(process)
        else:
            log.seek(0)
            output = log.read().decode(errors="replace")[-4000:]
            raise RuntimeError(f"moto server did not start on 127.0.0.1:\n{output}")
        try:
            yield endpoint
        finally:
            _stop(process)


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def s3_client(endpoint: str) -> Any:
    """A boto3 S3 client for the server, with the dummy credentials passed explicitly."""
    import boto3
    from botocore.config import Config

    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=S3_CREDENTIALS["access_key"],
        aws_secret_access_key=S3_CREDENTIALS["secret_key"],
        region_name=S3_REGION,
        config=Config(signature_version="s3v4", s3={"addressing_style": "path"}),
    )


def create_private_bucket(endpoint: str, bucket: str | None = None) -> str:
    """Create a bucket (a fresh ``reports-<random>`` one by default) with all public access
    blocked; return its name."""
    bucket = bucket or f"reports-{uuid.uuid4().hex[:12]}"
    client = s3_client(endpoint)
    client.create_bucket(Bucket=bucket)
    client.put_public_access_block(
        Bucket=bucket,
        PublicAccessBlockConfiguration={
            "BlockPublicAcls": True,
            "IgnorePublicAcls": True,
            "BlockPublicPolicy": True,
            "RestrictPublicBuckets": True,
        },
    )
    return bucket


def delete_bucket(endpoint: str, bucket: str) -> None:
    """Delete every object of the bucket, then the bucket."""
    client = s3_client(endpoint)
    for key in list_keys(endpoint, bucket):
        client.delete_object(Bucket=bucket, Key=key)
    client.delete_bucket(Bucket=bucket)


def list_keys(endpoint: str, bucket: str, prefix: str = "") -> list[str]:
    """Every key in the bucket under ``prefix``, sorted."""
    paginator = s3_client(endpoint).get_paginator("list_objects_v2")
    return sorted(
        item["Key"]
        for page in paginator.paginate(Bucket=bucket, Prefix=prefix)
        for item in page.get("Contents", ())
    )


def s3_storage_settings(endpoint: str, bucket: str, **options: Any) -> dict[str, Any]:
    """A ``STORAGES`` entry for django-storages' S3Storage on this server and bucket.

    ``PRIVATE_BUCKET_OPTIONS`` plus the endpoint, the dummy credentials and
    path-style addressing (no DNS for bucket subdomains on loopback); keyword
    arguments override any option.
    """
    return {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": bucket,
            "endpoint_url": endpoint,
            "region_name": S3_REGION,
            "addressing_style": "path",
            **S3_CREDENTIALS,
            **copy.deepcopy(PRIVATE_BUCKET_OPTIONS),
            **options,
        },
    }


def use_s3(settings: Any, endpoint: str, bucket: str, **options: Any) -> None:
    """Point the report storage of a test (pytest-django's ``settings``) at the bucket."""
    settings.STORAGES = {
        **settings.STORAGES,
        "reports": s3_storage_settings(endpoint, bucket, **options),
    }
    settings.ASYNC_REPORTS = {**settings.ASYNC_REPORTS, "STORAGE": "reports"}
