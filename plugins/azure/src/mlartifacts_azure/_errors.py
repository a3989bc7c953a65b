"""The one place where azure-core's and azure-storage-blob's errors become mlartifacts' errors.

The service names its errors with codes (``BlobNotFound``, ``ServerBusy``...); a
HEAD answer has no body, so only its status is known there. The table maps
codes first, then falls back on the status; connection failures are transient.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Iterator

from mlartifacts.errors import (
    ArtifactError,
    BackendError,
    IntegrityError,
    InvalidPath,
    InvalidUri,
    NotFound,
    NotSupported,
    PermissionDenied,
    PreconditionFailed,
    TransientError,
    Unauthenticated,
)

if TYPE_CHECKING:
    from ._root import AzureRoot

__all__ = ["BY_CODE", "error_code", "translate", "translated"]

#: Azure Storage error code -> what it means here.
BY_CODE: dict[str, type[ArtifactError]] = {
    "BlobNotFound": NotFound,
    "ContainerNotFound": NotFound,
    "ResourceNotFound": NotFound,
    "AuthorizationFailure": PermissionDenied,
    "AuthorizationPermissionMismatch": PermissionDenied,
    "AuthorizationResourceTypeMismatch": PermissionDenied,
    "AuthorizationServiceMismatch": PermissionDenied,
    "AuthorizationSourceIPMismatch": PermissionDenied,
    "AuthorizationProtocolMismatch": PermissionDenied,
    "InsufficientAccountPermissions": PermissionDenied,
    "AccountIsDisabled": PermissionDenied,
    "AuthenticationFailed": Unauthenticated,
    "InvalidAuthenticationInfo": Unauthenticated,
    "NoAuthenticationInformation": Unauthenticated,
    "ServerBusy": TransientError,
    "OperationTimedOut": TransientError,
    "InternalError": TransientError,
    "ContainerBeingDeleted": TransientError,
    "ConditionNotMet": PreconditionFailed,
    "TargetConditionNotMet": PreconditionFailed,
    "SourceConditionNotMet": PreconditionFailed,
    "Md5Mismatch": IntegrityError,
    "Crc64Mismatch": IntegrityError,
    "InvalidMd5": IntegrityError,
    "InvalidResourceName": InvalidUri,
    "OutOfRangeInput": InvalidUri,  # container names out of bounds
    "InvalidUri": InvalidPath,
    "FeatureNotSupportedByEmulator": NotSupported,
}

_CONTAINER_CODES = {"ContainerNotFound", "ContainerBeingDeleted", "InvalidResourceName", "OutOfRangeInput"}


def _by_status(status: int) -> type[ArtifactError]:
    if status == 404:
        return NotFound
    if status == 403:
        return PermissionDenied
    if status == 401:
        return Unauthenticated
    if status == 412:
        return PreconditionFailed
    if status in (408, 429) or status >= 500:
        return TransientError
    return BackendError


def error_code(exc: BaseException) -> str:
    """The Azure Storage error code of an HttpResponseError ('' for anything else)."""
    code = getattr(exc, "error_code", None)
    if code:
        # The SDK gives a StorageErrorCode (a str Enum): its value is the service's code.
        return str(getattr(code, "value", code))
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None) or {}
    return str(headers.get("x-ms-error-code", "")) if hasattr(headers, "get") else ""


def status_of(exc: BaseException) -> int:
    """The HTTP status of an HttpResponseError (0 when there was no answer)."""
    status = getattr(exc, "status_code", None)
    return status if isinstance(status, int) else 0


def _first_line(exc: BaseException) -> str:
    message = getattr(exc, "message", None) or str(exc)
    return str(message).strip().splitlines()[0] if str(message).strip() else type(exc).__name__


def translate(exc: BaseException, root: AzureRoot, name: str | None) -> ArtifactError:
    """The mlartifacts error for an Azure SDK exception raised while working on blob ``name`` of ``root``."""
    from azure.core import exceptions as ace

    target = root.uri(name)
    where = f"(account {root.account.name!r}, container {root.container!r}, endpoint {root.endpoint})"
    if isinstance(exc, ace.ClientAuthenticationError) and not status_of(exc):
        # No answer from the storage: no credential could be had at all (DefaultAzureCredential's chain).
        return _unauthenticated(root, target, _first_line(exc), where)
    if isinstance(exc, ace.HttpResponseError) and status_of(exc):
        code = error_code(exc)
        status = status_of(exc)
        message = _first_line(exc)
        kind = BY_CODE.get(code) or _by_status(status)
        label = code or f"HTTP {status}"
        if kind is NotFound:
            if code == "ContainerNotFound":
                return NotFound(f"Azure container {root.container!r} does not exist {where}")
            return NotFound(f"no blob {name or ''!r} at {target} ({label}) {where}")
        if code in _CONTAINER_CODES:
            return kind(f"Azure container {root.container!r}: {label} {where}")
        if kind is Unauthenticated:
            return _unauthenticated(root, target, f"{label}: {message}", where)
        if kind is PermissionDenied:
            return PermissionDenied(
                f"access denied to {target} ({label}) {where}: the credential from "
                f"{root.config.credential_source} is not allowed to do this (a wrong account key, an "
                "expired or read-only SAS, or a missing 'Storage Blob Data' role)"
            )
        return kind(f"{target}: {label}: {message} {where}")
    if isinstance(exc, ace.HttpResponseError):  # no response at all
        return TransientError(f"{target}: {_first_line(exc)} {where}")
    if isinstance(exc, (ace.ServiceRequestError, ace.ServiceResponseError, ace.IncompleteReadError)):
        text = _first_line(exc)
        if "CERTIFICATE_VERIFY_FAILED" in str(exc) or "SSLError" in text:
            # Retrying cannot fix a certificate.
            return BackendError(
                f"{target}: TLS verification of {root.endpoint} failed ({text}): set "
                "MLFLOW_TRACKING_SERVER_CERT_PATH (or REQUESTS_CA_BUNDLE) to the CA that signed "
                "its certificate"
            )
        return TransientError(f"{target}: {text} {where}")
    if isinstance(exc, ace.DecodeError):
        return IntegrityError(f"{target}: {_first_line(exc)} {where}")
    if isinstance(exc, ValueError) and "token credential" in str(exc).lower():
        # The SDK refuses bearer tokens over plain HTTP.
        return Unauthenticated(
            f"{target}: {exc} {where}: use an https:// endpoint with DefaultAzureCredential"
        )
    return BackendError(f"{target}: {type(exc).__name__}: {_first_line(exc)} {where}")


def _unauthenticated(root: AzureRoot, target: str, detail: str, where: str) -> Unauthenticated:
    source = root.config.credential_source
    if source == "DefaultAzureCredential":
        tried = (
            "tried AZURE_STORAGE_CONNECTION_STRING (unset), AZURE_STORAGE_ACCESS_KEY (unset), then "
            "DefaultAzureCredential (environment, workload identity, managed identity, Azure CLI...)"
        )
    else:
        tried = f"used {source}"
    return Unauthenticated(
        f"Azure rejected or could not get credentials for {target} {where}: {tried}: {detail}"
    )


@contextlib.contextmanager
def translated(root: AzureRoot, name: str | None) -> Iterator[None]:
    """Translate the Azure SDK's exceptions raised inside the block (``raise ... from exc``)."""
    from azure.core.exceptions import AzureError

    try:
        yield
    except AzureError as exc:
        raise translate(exc, root, name) from exc
    except ValueError as exc:
        if "token credential" not in str(exc).lower():
            raise
        raise translate(exc, root, name) from exc
