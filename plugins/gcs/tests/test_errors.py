"""The error table: SDK, auth and transport exceptions -> mlartifacts' errors.

A unit test of the mapping (the SDK's exception classes, built by hand): the
emulator cannot produce 401, 403, 429 or 5xx answers. It is not a test of GCS.
"""

from __future__ import annotations

from typing import Any

import pytest
import requests
from google.api_core import exceptions as api
from google.auth import exceptions as auth

from mlartifacts.errors import (
    ArtifactError,
    BackendError,
    NotFound,
    PermissionDenied,
    PreconditionFailed,
    TransientError,
    Unauthenticated,
)
from mlartifacts_gcs._errors import from_status, translate


@pytest.fixture
def root(unique_uri: str) -> Any:
    from mlartifacts import Settings
    from mlartifacts_gcs import resolve_uri

    return resolve_uri(unique_uri, Settings())


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (api.NotFound("No such object: b/k"), NotFound),
        (api.Forbidden("caller does not have storage.objects.get access"), PermissionDenied),
        (api.Unauthorized("Invalid Credentials"), Unauthenticated),
        (api.PreconditionFailed("conditionNotMet"), PreconditionFailed),
        (api.TooManyRequests("rate limit"), TransientError),
        (api.InternalServerError("backend error"), TransientError),
        (api.ServiceUnavailable("try again"), TransientError),
        (api.BadRequest("invalid argument"), BackendError),
        (auth.RefreshError("invalid_grant: Invalid JWT Signature."), Unauthenticated),
        (auth.TransportError("connection refused"), TransientError),
        (requests.exceptions.ConnectionError("Connection reset by peer"), TransientError),
        (requests.exceptions.ReadTimeout("read timed out"), TransientError),
        (requests.exceptions.ChunkedEncodingError("incomplete read"), TransientError),
        (ValueError("something odd"), BackendError),
    ],
)
def test_table(root: Any, exc: BaseException, expected: type[ArtifactError]) -> None:
    error = translate(exc, root, "dir/k.bin")
    assert type(error) is expected
    assert root.uri("dir/k.bin") in str(error) or "dir/k.bin" in str(error)


def test_missing_bucket_and_object_are_told_apart(root: Any) -> None:
    bucket = from_status(404, "The specified bucket does not exist.", root, "k")
    assert f"bucket {root.bucket!r} does not exist" in str(bucket)
    obj = from_status(404, "No such object: b/k", root, "k")
    assert "no object 'k'" in str(obj)


def test_forbidden_says_what_to_do(root: Any) -> None:
    assert "anonymous access" in str(from_status(403, "denied", root, "k"))  # the emulator's client
