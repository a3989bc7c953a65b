"""The error table, unit-tested with botocore's own exception objects.

(Building ClientError objects by hand is fine for this table; the backend itself
is tested against a real server in the other files.)
"""

from __future__ import annotations

from typing import Any

import pytest
from botocore import exceptions as bce

from mlartifacts.errors import (
    ArtifactError,
    BackendError,
    IntegrityError,
    InvalidPath,
    NotFound,
    PermissionDenied,
    TransientError,
    Unauthenticated,
)
from mlartifacts_s3 import S3Config, S3Root
from mlartifacts_s3._errors import translate, translated

ENDPOINT = "http://127.0.0.1:8333"
ROOT = S3Root("models", "exp/1", S3Config(endpoint_url=ENDPOINT))
KEY = "exp/1/weights.bin"


def client_error(code: str, status: int, message: str = "") -> bce.ClientError:
    response: Any = {
        "Error": {"Code": code, "Message": message},
        "ResponseMetadata": {"HTTPStatusCode": status},
    }
    return bce.ClientError(response, "GetObject")


@pytest.mark.parametrize(
    ("code", "status", "expected"),
    [
        ("NoSuchKey", 404, NotFound),
        ("NoSuchBucket", 404, NotFound),
        ("404", 404, NotFound),  # a HEAD answer: no body, so the status is the code
        ("NoSuchUpload", 404, NotFound),
        ("AccessDenied", 403, PermissionDenied),
        ("403", 403, PermissionDenied),
        ("InvalidAccessKeyId", 403, Unauthenticated),
        ("SignatureDoesNotMatch", 403, Unauthenticated),
        ("ExpiredToken", 400, Unauthenticated),
        ("SlowDown", 503, TransientError),
        ("InternalError", 500, TransientError),
        ("500", 500, TransientError),
        ("503", 503, TransientError),
        ("ServiceUnavailable", 503, TransientError),
        ("RequestTimeout", 400, TransientError),
        ("BadDigest", 400, IntegrityError),
        ("KeyTooLongError", 400, InvalidPath),
        ("SomethingNew", 502, TransientError),  # unknown code: the status decides
        ("SomethingNew", 429, TransientError),
        ("SomethingNew", 404, NotFound),
        ("EntityTooSmall", 400, BackendError),
    ],
)
def test_client_errors(code: str, status: int, expected: type[ArtifactError]) -> None:
    error = translate(client_error(code, status, "details"), ROOT, KEY)
    assert type(error) is expected
    assert error.transient == (expected in (TransientError, IntegrityError))


def test_not_found_names_key_and_endpoint() -> None:
    error = translate(client_error("NoSuchKey", 404, "The specified key does not exist."), ROOT, KEY)
    assert str(error) == f"no object at s3://models/{KEY} (NoSuchKey) (endpoint {ENDPOINT})"
    assert isinstance(error, FileNotFoundError)


def test_missing_bucket_names_bucket_and_endpoint() -> None:
    error = translate(client_error("NoSuchBucket", 404, "The specified bucket does not exist"), ROOT, KEY)
    assert isinstance(error, NotFound)
    assert str(error) == (
        f"S3 bucket 'models': The specified bucket does not exist (NoSuchBucket) (endpoint {ENDPOINT})"
    )


def test_unauthenticated_says_what_to_check() -> None:
    error = translate(client_error("SignatureDoesNotMatch", 403, "The signature does not match"), ROOT, KEY)
    assert isinstance(error, Unauthenticated)
    assert f"s3://models/{KEY}" in str(error) and ENDPOINT in str(error)
    assert "AWS_SECRET_ACCESS_KEY" in str(error)


def test_access_denied_for_anonymous_requests_mentions_the_setting() -> None:
    unsigned = S3Root("models", "", S3Config(endpoint_url=ENDPOINT, unsigned=True))
    error = translate(client_error("AccessDenied", 403, "Access Denied."), unsigned, "k")
    assert isinstance(error, PermissionDenied)
    assert "MLFLOW_EXPERIMENTAL_S3_SIGNATURE_VERSION=unsigned" in str(error)


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (bce.EndpointConnectionError(endpoint_url=ENDPOINT), TransientError),
        (bce.ConnectTimeoutError(endpoint_url=ENDPOINT), TransientError),
        (bce.ReadTimeoutError(endpoint_url=ENDPOINT), TransientError),
        (bce.ConnectionClosedError(endpoint_url=ENDPOINT), TransientError),
        (bce.ResponseStreamingError(error="connection reset by peer"), TransientError),
        (bce.IncompleteReadError(actual_bytes=1, expected_bytes=2), TransientError),
        (bce.FlexibleChecksumError(error_msg="Expected checksum x did not match calculated checksum y"),
         IntegrityError),
        (bce.NoCredentialsError(), Unauthenticated),
        (bce.PartialCredentialsError(provider="env", cred_var="AWS_SECRET_ACCESS_KEY"), Unauthenticated),
        (bce.ParamValidationError(report="Invalid type for parameter Metadata"), BackendError),
    ],
)  # fmt: skip
def test_botocore_errors(exc: Exception, expected: type[ArtifactError]) -> None:
    error = translate(exc, ROOT, KEY)
    assert type(error) is expected
    assert f"s3://models/{KEY}" in str(error)


def test_tls_failure_is_permanent_and_says_what_to_set() -> None:
    error = translate(bce.SSLError(endpoint_url=ENDPOINT, error="CERTIFICATE_VERIFY_FAILED"), ROOT, KEY)
    assert type(error) is BackendError and not error.transient
    assert "AWS_CA_BUNDLE" in str(error) and "MLFLOW_S3_IGNORE_TLS=true" in str(error)


def test_no_credentials_says_where_they_come_from() -> None:
    error = translate(bce.NoCredentialsError(), ROOT, KEY)
    assert "AWS_ACCESS_KEY_ID" in str(error) and "AWS_PROFILE" in str(error)


def test_translated_chains_the_original() -> None:
    original = client_error("SlowDown", 503, "Please reduce your request rate.")
    with pytest.raises(TransientError) as raised, translated(ROOT, KEY):
        raise original
    assert raised.value.__cause__ is original


def test_translated_leaves_other_errors_alone() -> None:
    with pytest.raises(KeyError), translated(ROOT, KEY):
        raise KeyError("not botocore's")
