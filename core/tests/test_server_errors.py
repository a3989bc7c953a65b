"""The server's mapping of the core's errors to MLflow's error codes and HTTP statuses."""

from __future__ import annotations

import asyncio
import json

import pytest
from starlette.applications import Starlette
from starlette.requests import Request

from mlartifacts import errors
from mlartifacts.server._errors import handle_artifact_error


def _answer(exc: errors.ArtifactError) -> tuple[int, dict[str, str]]:
    app = Starlette()
    app.state.hidden_locations = ("/srv/artifacts", "./mlartifacts", "artifacts")
    scope = {"type": "http", "method": "GET", "path": "/x", "headers": [], "query_string": b"", "app": app}
    request = Request(scope)
    response = asyncio.run(handle_artifact_error(request, exc))
    return response.status_code, json.loads(bytes(response.body))


@pytest.mark.parametrize(
    ("error", "status", "code"),
    [
        (errors.NotFound("gone"), 404, "RESOURCE_DOES_NOT_EXIST"),
        (errors.AlreadyExists("there"), 409, "RESOURCE_CONFLICT"),
        (errors.PreconditionFailed("changed"), 409, "RESOURCE_CONFLICT"),
        (errors.PermissionDenied("no"), 403, "PERMISSION_DENIED"),
        (errors.NotSupported("nope"), 501, "NOT_IMPLEMENTED"),
    ],
)
def test_error_codes(error: errors.ArtifactError, status: int, code: str) -> None:
    assert _answer(error) == (status, {"error_code": code, "message": error.message})


def test_precondition_failed_is_not_transient() -> None:
    # A changed object stays changed: the engine must not retry the same condition.
    assert errors.PreconditionFailed("changed").transient is False


def test_messages_never_name_the_destination() -> None:
    status, body = _answer(errors.NotFound("no such file or directory: /srv/artifacts/1/run/x.bin"))
    assert (status, body["message"]) == (404, "no such file or directory: 1/run/x.bin")
    _, body = _answer(errors.NotSupported("the 'nfs' backend does not support presign (at /srv/artifacts)"))
    assert body["message"] == "the 'nfs' backend does not support presign (at <destination>)"


def test_the_destination_refusing_the_server_is_not_the_client_s_fault() -> None:
    # A 401 would read as if the client's login were wrong; the server's own credentials were.
    status, body = _answer(errors.Unauthenticated("InvalidAccessKeyId at s3://bucket"))
    assert (status, body["error_code"]) == (503, "TEMPORARILY_UNAVAILABLE")
    assert "storage credentials were refused" in body["message"]


def test_relative_destinations_are_hidden_but_artifact_paths_kept() -> None:
    # `mlartifacts server` started in a directory keeps './mlartifacts' (or 'artifacts'):
    # that is hidden too, but an artifact path containing the same word stays whole.
    _, body = _answer(errors.NotFound("no such file or directory: ./mlartifacts/0/run/x.bin"))
    assert body["message"] == "no such file or directory: 0/run/x.bin"
    _, body = _answer(errors.NotFound("no such file or directory: artifacts/1/run/artifacts/model.pkl"))
    assert body["message"] == "no such file or directory: 1/run/artifacts/model.pkl"
