"""The settings of docs/how-to/s3.md: report files in a private S3 bucket.

A fragment of a host's settings module. It reads the bucket's name and region
from the environment; the credentials are boto3's to find (an IAM role, or the
``AWS_*`` variables), so none appear here. tests/test_howto_s3.py imports it
with those variables set and points it at a moto server.
"""

# --8<-- [start:settings]
import os

STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    "reports": {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": os.environ["REPORTS_BUCKET"],
            "region_name": os.environ["REPORTS_BUCKET_REGION"],
            # No access_key / secret_key: boto3 finds the credentials (IAM role
            # of the instance, task or pod; or AWS_ACCESS_KEY_ID and friends).
            "default_acl": None,  # objects stay private, as the bucket is
            "querystring_auth": True,  # url() returns presigned URLs...
            "signature_version": "s3v4",  # ...signed with SigV4
            "querystring_expire": 300,  # lifetime of a URL minted without one
            "file_overwrite": True,  # a retried run replaces its own key
            "object_parameters": {
                # Stops django-storages from storing .gz files with
                # Content-Encoding: gzip (clients would unpack them).
                "ContentType": "application/octet-stream",
                # Encryption at rest, SSE-S3; see below for SSE-KMS.
                "ServerSideEncryption": "AES256",
            },
        },
    },
}

ASYNC_REPORTS = {
    "STORAGE": "reports",  # the STORAGES alias report files go to
    "STORAGE_PREFIX": "reports",  # the folder (key prefix) inside the bucket
    "DOWNLOAD_URL_EXPIRES": 300,  # seconds a download's presigned URL is valid
}
# --8<-- [end:settings]
