"""The error table: every Azure code and status class lands on the right mlartifacts error.

Unit tests with hand-made SDK exceptions (what the table does with each); the
same errors raised for real by Azurite are in test_azure.py.
"""

from __future__ import annotations

import pytest
from azure.core import exceptions as ace

from mlartifacts import errors
from mlartifacts_azure._config import AzureConfig
from mlartifacts_azure._errors import translate
from mlartifacts_azure._root import AzureRoot, parse_uri


@pytest.fixture
def root() -> AzureRoot:
    config = AzureConfig(endpoint="http://127.0.0.1:1/acct", access_key="a2V5")
    return parse_uri("wasbs://box@acct.blob.core.windows.net/p", config)


def http_error(
    status: int, code: str | None, kind: type[ace.HttpResponseError] = ace.HttpResponseError
) -> Exception:
    exc = kind(message=f"{code}: something")
    exc.status_code = status
    exc.error_code = code
    return exc


@pytest.mark.parametrize(
    ("status", "code", "expected"),
    [
        (404, "BlobNotFound", errors.NotFound),
        (404, "ContainerNotFound", errors.NotFound),
        (404, None, errors.NotFound),
        (403, "AuthorizationFailure", errors.PermissionDenied),
        (403, "AuthorizationPermissionMismatch", errors.PermissionDenied),
        (403, None, errors.PermissionDenied),
        (403, "AuthenticationFailed", errors.Unauthenticated),
        (401, None, errors.Unauthenticated),
        (503, "ServerBusy", errors.TransientError),
        (500, "InternalError", errors.TransientError),
        (502, None, errors.TransientError),
        (429, None, errors.TransientError),
        (412, "ConditionNotMet", errors.PreconditionFailed),
        (412, None, errors.PreconditionFailed),
        (400, "Md5Mismatch", errors.IntegrityError),
        (400, "OutOfRangeInput", errors.InvalidUri),
        (409, "LeaseIdMissing", errors.BackendError),
    ],
)
def test_table(root: AzureRoot, status: int, code: str | None, expected: type[errors.ArtifactError]) -> None:
    translated = translate(http_error(status, code), root, "p/f.bin")
    assert type(translated) is expected
    assert translated.transient == expected.transient
    assert "acct" in str(translated) and "box" in str(translated)


def test_not_found_names_account_container_and_blob(root: AzureRoot) -> None:
    message = str(translate(http_error(404, "BlobNotFound", ace.ResourceNotFoundError), root, "p/f.bin"))
    assert "'acct'" in message and "'box'" in message and "p/f.bin" in message
    container = str(translate(http_error(404, "ContainerNotFound"), root, "p/f.bin"))
    assert "container 'box' does not exist" in container


def test_connection_failures_are_transient(root: AzureRoot) -> None:
    for exc in (ace.ServiceRequestError("refused"), ace.ServiceResponseError("reset by peer")):
        assert isinstance(translate(exc, root, "f"), errors.TransientError)


def test_certificate_failure_is_permanent_and_says_what_to_set(root: AzureRoot) -> None:
    exc = ace.ServiceRequestError("SSLError: [SSL: CERTIFICATE_VERIFY_FAILED] self-signed certificate")
    translated = translate(exc, root, "f")
    assert type(translated) is errors.BackendError and "MLFLOW_TRACKING_SERVER_CERT_PATH" in str(translated)


def test_missing_credential_lists_what_was_tried(root: AzureRoot) -> None:
    chain = parse_uri("wasbs://box@acct.blob.core.windows.net", AzureConfig())
    translated = translate(ace.ClientAuthenticationError("DefaultAzureCredential failed"), chain, None)
    assert type(translated) is errors.Unauthenticated
    text = str(translated)
    for tried in ("AZURE_STORAGE_CONNECTION_STRING", "AZURE_STORAGE_ACCESS_KEY", "DefaultAzureCredential"):
        assert tried in text


def test_rejected_key_names_its_source(root: AzureRoot) -> None:
    translated = translate(http_error(403, "AuthenticationFailed", ace.ClientAuthenticationError), root, "f")
    assert type(translated) is errors.Unauthenticated and "AZURE_STORAGE_ACCESS_KEY" in str(translated)
    assert "a2V5" not in str(translated)


def test_anything_else_is_a_backend_error(root: AzureRoot) -> None:
    assert type(translate(ace.AzureError("odd"), root, "f")) is errors.BackendError


def test_codes_as_the_sdk_gives_them(root: AzureRoot) -> None:
    # The SDK carries a StorageErrorCode enum, whose value is the service's code.
    from azure.storage.blob import StorageErrorCode

    exc = http_error(400, None)
    exc.error_code = StorageErrorCode.MD5_MISMATCH
    assert type(translate(exc, root, "f")) is errors.IntegrityError
