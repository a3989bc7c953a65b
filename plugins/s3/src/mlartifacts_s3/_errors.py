"""The one place where boto3's errors become mlartifacts' errors.

S3 names its errors with codes (``NoSuchKey``, ``SlowDown``...); a HEAD answer has
no body, so botocore can only report its HTTP status as the code (``"404"``). The
table maps codes first, then falls back on the status.
"""

from __future__ import annotations

import contextlib
import re
from typing import TYPE_CHECKING, Any, Iterator

from mlartifacts.errors import (
    ArtifactError,
    BackendError,
    IntegrityError,
    InvalidPath,
    InvalidUri,
    NotFound,
    PermissionDenied,
    TransientError,
    Unauthenticated,
)

if TYPE_CHECKING:
    from ._root import S3Root

__all__ = ["error_code", "is_tls_failure", "translate", "translate_obstore", "translated"]

#: S3 error code -> what it means here.
BY_CODE: dict[str, type[ArtifactError]] = {
    "NoSuchBucket": NotFound,
    "NoSuchKey": NotFound,
    "NoSuchUpload": NotFound,
    "NotFound": NotFound,
    "404": NotFound,
    "AccessDenied": PermissionDenied,
    "AllAccessDisabled": PermissionDenied,
    "403": PermissionDenied,
    "InvalidAccessKeyId": Unauthenticated,
    "SignatureDoesNotMatch": Unauthenticated,
    "ExpiredToken": Unauthenticated,
    "InvalidToken": Unauthenticated,
    "TokenRefreshRequired": Unauthenticated,
    "401": Unauthenticated,
    "SlowDown": TransientError,
    "Throttling": TransientError,
    "ThrottlingException": TransientError,
    "RequestLimitExceeded": TransientError,
    "RequestTimeout": TransientError,
    "InternalError": TransientError,
    "ServiceUnavailable": TransientError,
    "OperationAborted": TransientError,
    "BadDigest": IntegrityError,
    "XAmzContentSHA256Mismatch": IntegrityError,
    "KeyTooLongError": InvalidPath,
    "InvalidBucketName": InvalidUri,
}

_BUCKET_CODES = {"NoSuchBucket", "InvalidBucketName", "AllAccessDisabled"}


def _by_status(status: int) -> type[ArtifactError]:
    if status == 404:
        return NotFound
    if status == 403:
        return PermissionDenied
    if status == 401:
        return Unauthenticated
    if status == 429 or status >= 500:
        return TransientError
    return BackendError


def error_code(exc: BaseException) -> str:
    """The S3 error code of a botocore ClientError ('' for anything else)."""
    response: Any = getattr(exc, "response", None)
    if not isinstance(response, dict):
        return ""
    return str(response.get("Error", {}).get("Code", ""))


def _status(exc: BaseException) -> int:
    response: Any = getattr(exc, "response", None) or {}
    status = response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
    return int(status) if isinstance(status, int) else 0


def _from_answer(code: str, message: str, status: int, root: S3Root, key: str | None) -> ArtifactError:
    """The mlartifacts error for S3's error answer (code, message, HTTP status), by the table."""
    endpoint = root.endpoint
    target = f"s3://{root.bucket}/{key}" if key else f"s3://{root.bucket}"
    where = f"(endpoint {endpoint})"
    kind = BY_CODE.get(code) or _by_status(status)
    if code in _BUCKET_CODES:
        return kind(f"S3 bucket {root.bucket!r}: {message} ({code}) {where}")
    if kind is NotFound:
        if code == "NoSuchUpload":
            return NotFound(f"{target}: no such multipart upload (completed or aborted already) {where}")
        return NotFound(f"no object at {target} ({code}) {where}")
    if kind is PermissionDenied:
        hint = (
            "anonymous requests (MLFLOW_EXPERIMENTAL_S3_SIGNATURE_VERSION=unsigned) "
            "may only read public buckets"
            if root.config.unsigned
            else "the credentials are valid but a bucket or IAM policy does not allow this"
        )
        return PermissionDenied(f"access denied to {target} ({code}: {message}) {where}: {hint}")
    if kind is Unauthenticated:
        return Unauthenticated(
            f"S3 rejected the credentials for {target} ({code}: {message}) {where}: check "
            "AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN, or AWS_PROFILE"
        )
    return kind(f"{target}: {code}: {message} {where}")


def translate(exc: BaseException, root: S3Root, key: str | None) -> ArtifactError:
    """The mlartifacts error for a botocore exception raised while working on ``key`` of ``root``."""
    from botocore import exceptions as bce

    endpoint = root.endpoint
    target = f"s3://{root.bucket}/{key}" if key else f"s3://{root.bucket}"
    where = f"(endpoint {endpoint})"
    if isinstance(exc, bce.ClientError):
        code = error_code(exc)
        message = exc.response.get("Error", {}).get("Message", "") or code
        return _from_answer(code, message, _status(exc), root, key)
    if isinstance(exc, bce.SSLError):
        # A subclass of botocore's ConnectionError, but retrying cannot fix a certificate.
        return BackendError(
            f"{target}: TLS verification of {endpoint} failed ({exc}): set AWS_CA_BUNDLE to the CA that "
            "signed its certificate, or MLFLOW_S3_IGNORE_TLS=true to skip the check"
        )
    if isinstance(exc, (bce.NoCredentialsError, bce.PartialCredentialsError, bce.CredentialRetrievalError)):
        return Unauthenticated(
            f"{target}: no usable AWS credentials ({exc}): set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, "
            "or AWS_PROFILE, or run with an instance role; for a public bucket set "
            "MLFLOW_EXPERIMENTAL_S3_SIGNATURE_VERSION=unsigned"
        )
    if isinstance(exc, (bce.ConnectionError, bce.HTTPClientError, bce.IncompleteReadError)):
        return TransientError(f"{target}: {exc} {where}")
    if isinstance(exc, (bce.FlexibleChecksumError, bce.ChecksumError)):
        return IntegrityError(f"{target}: {exc} {where}")
    return BackendError(f"{target}: {type(exc).__name__}: {exc} {where}")


# obstore's errors are text: "... status code: 404 Not Found: <?xml ...><Error><Code>NoSuchKey</Code>
# <Message>...</Message>..." for an answer, "HTTP error: error sending request" and the like
# for a request that never got one, then a "Debug source:" dump that is not for users.
_STATUS = re.compile(r"status code: (\d{3})")
_CODE = re.compile(r"<Code>([^<]*)</Code>")
_MESSAGE = re.compile(r"<Message>([^<]*)</Message>")
_NO_ANSWER = ("HTTP error", "error sending request", "connection", "timed out", "Timeout", "body")
_TLS = ("certificate", "Certificate", "UnknownIssuer", "CaUsedAsEndEntity", "SSL routines")


def is_tls_failure(exc: BaseException) -> bool:
    """Whether an obstore exception is a refused certificate (its text, debug dump included)."""
    return any(t in str(exc) for t in _TLS)


def translate_obstore(exc: BaseException, root: S3Root, key: str | None) -> ArtifactError:
    """The mlartifacts error for an obstore exception (the batch path), by the same table."""
    text, _, debug = str(exc).partition("\n\nDebug source:")  # the debug dump is not shown
    status = _STATUS.search(text)
    code = _CODE.search(text)
    if status or code:
        message = _MESSAGE.search(text)
        return _from_answer(
            code.group(1) if code else "",
            message.group(1) if message else (code.group(1) if code else text),
            int(status.group(1)) if status else 0,
            root,
            key,
        )
    target = f"s3://{root.bucket}/{key}" if key else f"s3://{root.bucket}"
    where = f"(endpoint {root.endpoint})"
    name = type(exc).__name__
    if name == "UnauthenticatedError" or "credential" in text.lower():
        return Unauthenticated(f"{target}: no usable AWS credentials ({text}) {where}")
    if name == "PermissionDeniedError":
        return PermissionDenied(f"access denied to {target} ({text}) {where}")
    if isinstance(exc, FileNotFoundError) or name == "NotFoundError":
        return NotFound(f"no object at {target} {where}")
    if any(t in text or t in debug for t in _TLS):
        return BackendError(
            f"{target}: TLS verification of {root.endpoint} failed ({text}): set AWS_CA_BUNDLE to the CA "
            "that signed its certificate, or MLFLOW_S3_IGNORE_TLS=true to skip the check"
        )
    if isinstance(exc, (ConnectionError, TimeoutError)) or any(t in text for t in _NO_ANSWER):
        return TransientError(f"{target}: {text} {where}")
    return BackendError(f"{target}: {name}: {text} {where}")


@contextlib.contextmanager
def translated(root: S3Root, key: str | None) -> Iterator[None]:
    """Translate botocore's exceptions raised inside the block (``raise ... from exc``)."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        yield
    except (ClientError, BotoCoreError) as exc:
        raise translate(exc, root, key) from exc
