"""MLflow's error format: ``{"error_code": ..., "message": ...}`` with MLflow's HTTP statuses."""

from __future__ import annotations

import logging

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from .. import errors

__all__ = ["ApiError", "error_response", "handle_artifact_error"]

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
    return error_response(exc.code, exc.message)


async def handle_artifact_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, errors.ArtifactError)
    code = next((code for kind, code in _CODES if isinstance(exc, kind)), "INTERNAL_ERROR")
    if code == "INTERNAL_ERROR":
        log.error("%s %s failed: %s", request.method, request.url.path, exc, exc_info=exc)
    if isinstance(exc, errors.InvalidPath):
        # MLflow's clients look for exactly this message; the detail follows it.
        message = exc.message if exc.message.startswith("Invalid path") else f"Invalid path: {exc.message}"
        return error_response(code, message)
    return error_response(code, exc.message)
