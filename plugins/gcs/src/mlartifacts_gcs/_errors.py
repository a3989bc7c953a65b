"""The one place where google-cloud-storage's and google-auth's errors become mlartifacts' errors.

Every failure ends up as an HTTP status (the SDK's exceptions carry ``code``, a
raw response its ``status_code``) or a transport failure; the table maps the
status, then the message is written for the bucket or object it was about.
"""

from __future__ import annotations

import contextlib
import json
from typing import TYPE_CHECKING, Any, Iterator

from mlartifacts.errors import (
    ArtifactError,
    BackendError,
    IntegrityError,
    NotFound,
    PermissionDenied,
    PreconditionFailed,
    TransientError,
    Unauthenticated,
)

if TYPE_CHECKING:
    from ._root import GCSRoot

__all__ = ["BY_STATUS", "from_response", "translate", "translated"]

#: HTTP status -> what it means here (anything else >= 500 is transient, the rest permanent).
BY_STATUS: dict[int, type[ArtifactError]] = {
    401: Unauthenticated,
    403: PermissionDenied,
    404: NotFound,
    408: TransientError,
    412: PreconditionFailed,
    429: TransientError,
}


def _kind(status: int) -> type[ArtifactError]:
    return BY_STATUS.get(status) or (TransientError if status >= 500 else BackendError)


def from_status(status: int, message: str, root: GCSRoot, key: str | None) -> ArtifactError:
    """The mlartifacts error for an HTTP ``status`` GCS answered about ``key`` of ``root``."""
    target = root.uri(key)
    where = f"(endpoint {root.endpoint})"
    kind = _kind(status)
    if kind is NotFound:
        lowered = message.lower()
        if ("bucket" in lowered and "object" not in lowered) or not key:
            return NotFound(f"GCS bucket {root.bucket!r} does not exist ({status}: {message}) {where}")
        return NotFound(f"no object {key!r} in GCS bucket {root.bucket!r} ({status}: {message}) {where}")
    if kind is PermissionDenied:
        hint = (
            "anonymous access (no credentials) may only read public buckets: give credentials "
            "(GOOGLE_APPLICATION_CREDENTIALS, gcloud auth application-default login)"
            if root.client.anonymous
            else "the credentials are valid but an IAM policy does not allow this"
        )
        return PermissionDenied(f"access denied to {target} ({status}: {message}) {where}: {hint}")
    if kind is Unauthenticated:
        return Unauthenticated(
            f"GCS rejected the credentials for {target} ({status}: {message}) {where}: check "
            "GOOGLE_APPLICATION_CREDENTIALS or run `gcloud auth application-default login`"
        )
    if kind is PreconditionFailed:
        return PreconditionFailed(f"{target} changed meanwhile ({status}: {message}) {where}")
    return kind(f"{target}: {status}: {message} {where}")


def from_response(response: Any, root: GCSRoot, key: str | None) -> ArtifactError:
    """The error for a failed raw ``requests`` response (GCS's JSON error body, if any)."""
    text = response.text
    try:
        message = str(json.loads(text)["error"]["message"])
    except (ValueError, KeyError, TypeError):
        message = text.strip()[:200] or response.reason or ""
    return from_status(int(response.status_code), message, root, key)


def translate(exc: BaseException, root: GCSRoot, key: str | None) -> ArtifactError:
    """The mlartifacts error for an SDK, auth or transport exception raised while working on ``key``."""
    import requests
    from google.api_core import exceptions as api
    from google.auth import exceptions as auth
    from google.resumable_media import common as media

    transport = (
        requests.exceptions.ConnectionError,  # resets, refused connections
        requests.exceptions.Timeout,
        requests.exceptions.ChunkedEncodingError,  # a body cut short
        ConnectionError,
        TimeoutError,
    )
    target = root.uri(key)
    where = f"(endpoint {root.endpoint})"
    if isinstance(exc, api.GoogleAPICallError) and exc.code is not None:
        return from_status(int(exc.code), str(exc.message), root, key)
    if isinstance(exc, media.DataCorruption):
        return IntegrityError(f"{target}: {exc} {where}")
    if isinstance(exc, media.InvalidResponse):
        return from_response(exc.response, root, key)
    if isinstance(exc, auth.RefreshError):
        # A rejected key or an unreachable token endpoint: both are the credentials' problem.
        return Unauthenticated(
            f"{target}: could not obtain an access token ({exc}): check GOOGLE_APPLICATION_CREDENTIALS "
            "or run `gcloud auth application-default login`"
        )
    if isinstance(exc, auth.TransportError):
        return TransientError(f"{target}: {exc} {where}")
    if isinstance(exc, requests.exceptions.SSLError):
        return BackendError(f"{target}: TLS verification of {root.endpoint} failed ({exc})")
    if isinstance(exc, transport):
        return TransientError(f"{target}: {type(exc).__name__}: {exc} {where}")
    return BackendError(f"{target}: {type(exc).__name__}: {exc} {where}")


def _caught() -> tuple[type[BaseException], ...]:
    import requests
    from google.api_core.exceptions import GoogleAPIError
    from google.auth.exceptions import GoogleAuthError
    from google.resumable_media.common import DataCorruption, InvalidResponse

    return (GoogleAPIError, GoogleAuthError, DataCorruption, InvalidResponse,
            requests.exceptions.RequestException, ConnectionError, TimeoutError)  # fmt: skip


@contextlib.contextmanager
def translated(root: GCSRoot, key: str | None) -> Iterator[None]:
    """Translate the SDK's, google-auth's and requests' exceptions raised inside the block."""
    try:
        yield
    except ArtifactError:
        raise
    except _caught() as exc:
        raise translate(exc, root, key) from exc
