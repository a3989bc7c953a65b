"""MLflow's error format: ``{"error_code": ..., "message": ...}`` with MLflow's HTTP statuses."""

from __future__ import annotations

import logging
import re

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from .. import errors

__all__ = [
    "ApiError",
    "error_response",
    "handle_artifact_error",
    "handle_internal_error",
    "without_locations",
]

log = logging.getLogger("mlartifacts.server")

#: MLflow error code -> HTTP status (mlflow/protos/databricks ErrorCode mapping).
STATUS = {
    "INVALID_PARAMETER_VALUE": 400,
    "BAD_REQUEST": 400,
    "UNAUTHENTICATED": 401,
    "PERMISSION_DENIED": 403,
    "RESOURCE_DOES_NOT_EXIST": 404,
    "ENDPOINT_NOT_FOUND": 404,
    "RESOURCE_CONFLICT": 409,
    "REQUEST_TOO_LARGE": 413,  # not one of MLflow's codes: its server has no such limit
    "UNSUPPORTED_MEDIA_TYPE": 415,  # nor this one: MLflow has no batch routes
    "REQUEST_LIMIT_EXCEEDED": 429,
    "INTERNAL_ERROR": 500,
    "NOT_IMPLEMENTED": 501,
    "TEMPORARILY_UNAVAILABLE": 503,
    "DEADLINE_EXCEEDED": 504,
}

#: Core error -> MLflow error code; the first match wins (subclasses first).
_CODES: tuple[tuple[type[errors.ArtifactError], str], ...] = (
    (errors.NotFound, "RESOURCE_DOES_NOT_EXIST"),
    (errors.InvalidPath, "INVALID_PARAMETER_VALUE"),
    (errors.InvalidUri, "INVALID_PARAMETER_VALUE"),
    (errors.PermissionDenied, "PERMISSION_DENIED"),
    (errors.Unauthenticated, "UNAUTHENTICATED"),
    (errors.AlreadyExists, "RESOURCE_CONFLICT"),
    (errors.PreconditionFailed, "RESOURCE_CONFLICT"),
    (errors.NotSupported, "NOT_IMPLEMENTED"),
    (errors.OperationTimeout, "DEADLINE_EXCEEDED"),
    (errors.TransientError, "TEMPORARILY_UNAVAILABLE"),
)


class ApiError(Exception):
    """An error answered as MLflow would, with one of its error codes."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def error_response(code: str, message: str, headers: dict[str, str] | None = None) -> Response:
    return JSONResponse({"error_code": code, "message": message}, STATUS.get(code, 500), headers=headers)


async def handle_api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    # A refusal may quote a storage error (a body that does not match its digest names
    # the file where it was being written): the destination's locations are taken out.
    return error_response(exc.code, _client_message(request, exc.message))


def without_locations(message: str, locations: tuple[str, ...]) -> str:
    """``message`` with the destination's own locations taken out (longest first).

    ``<location>/run/x`` becomes ``run/x``: the client sees the artifact path it sent,
    never where the server keeps it (a filesystem path, a bucket). The log keeps both.
    """
    for location in locations:
        # Only where the location starts a path (after a space, a quote...), never inside
        # an artifact path that happens to contain the same words ('1/run/artifacts/x').
        name = re.escape(location)
        message = re.sub(rf"(?<![\w./-]){name}/", "", message)
        message = re.sub(rf"(?<![\w./-]){name}(?![\w./-])", "<destination>", message)
    return message


def _client_message(request: Request, message: str) -> str:
    return without_locations(message, getattr(request.app.state, "hidden_locations", ()))


async def handle_artifact_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, errors.ArtifactError)
    code = next((code for kind, code in _CODES if isinstance(exc, kind)), "INTERNAL_ERROR")
    metrics = getattr(request.app.state, "metrics", None)
    if metrics is not None:
        metrics.storage_error(exc)
    if code == "INTERNAL_ERROR":
        log.error("%s %s failed: %s", request.method, request.url.path, exc, exc_info=exc)
    else:
        log.info("%s %s: %s", request.method, request.url.path, exc)
    message = _client_message(request, exc.message)
    if isinstance(exc, errors.Unauthenticated):
        # The client's own credentials are checked before any route runs: this one is the
        # server's, refused by its destination. Not the client's mistake, so not a 401.
        code = "TEMPORARILY_UNAVAILABLE"
        message = f"the artifacts server's storage credentials were refused (tell its operator): {message}"
        log.error("%s %s: %s", request.method, request.url.path, exc)
    if isinstance(exc, errors.InvalidPath) and not message.startswith("Invalid path"):
        # MLflow's clients look for exactly this prefix; the detail follows it.
        message = f"Invalid path: {message}"
    return error_response(code, message)


async def handle_internal_error(request: Request, exc: Exception) -> Response:
    log.error("%s %s failed: %s", request.method, request.url.path, exc, exc_info=exc)
    return error_response("INTERNAL_ERROR", _client_message(request, f"{type(exc).__name__}: {exc}"))
