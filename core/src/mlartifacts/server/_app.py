"""The ASGI application: routes under /api/2.0, /ajax-api/2.0 and /api/3.0, behind an optional prefix."""

from __future__ import annotations

import contextlib
import os
from typing import Any, AsyncIterator

import anyio.to_thread
from starlette.applications import Starlette
from starlette.convertors import Convertor, register_url_convertor
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp

from .._registry import PluginRegistry
from .._version import __version__
from ..config import Settings
from ..errors import ArtifactError
from ..store import ArtifactStore
from ._access_log import AccessLogMiddleware, RouteNames
from ._artifacts import ArtifactsApi
from ._auth import AuthMiddleware, Credentials
from ._batch import BatchApi
from ._browser import BrowserPage, archive_stream
from ._config import ServerConfig
from ._errors import ApiError, error_response, handle_api_error, handle_artifact_error, handle_internal_error
from ._listings import Listings
from ._metrics import Metrics
from ._multipart import MultipartApi
from ._preview import preview
from ._security import SecurityMiddleware, SecurityPolicy

__all__ = ["app_from_env", "create_app"]


class _AnyPath(Convertor[str]):
    """Like Starlette's ``path``, but also matches control characters (refused later, with 400)."""

    regex = r"[\s\S]*"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("anypath", _AnyPath())


async def _health(request: Request) -> Response:
    return PlainTextResponse("OK")


async def _version(request: Request) -> Response:
    return PlainTextResponse(__version__)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 404:
        return error_response("ENDPOINT_NOT_FOUND", f"No API endpoint at {request.url.path}")
    response = error_response("BAD_REQUEST", str(exc.detail))
    response.status_code = exc.status_code
    if exc.headers:
        response.headers.update(exc.headers)
    return response


def _locations(store: ArtifactStore) -> tuple[str, ...]:
    """The strings that name the destination itself, which no answer may show a client."""
    backend = store.backend
    found = {backend.display_uri, backend.uri}
    for text in list(found):
        local = text.removeprefix("file://")
        if local and "://" not in local and ":" not in local.split("/", 1)[0]:
            found |= {os.path.abspath(local), os.path.realpath(local)}
    cleaned = {f.rstrip("/") for f in found} - {"", "."}
    return tuple(sorted(cleaned, key=len, reverse=True))


def create_app(
    config: ServerConfig | None = None,
    *,
    registry: PluginRegistry | None = None,
    settings: Settings | None = None,
) -> ASGIApp:
    """The artifacts service for ``config.artifacts_destination``, as an ASGI app."""
    config = config or ServerConfig()
    store = ArtifactStore(config.artifacts_destination, registry=registry, settings=settings)
    listings = Listings()  # shared: what one route writes, the others forget
    artifacts = ArtifactsApi(store, listings)
    multipart = MultipartApi(store, config.default_artifact_root, listings)
    batch = BatchApi(store, listings)

    async def archive(request: Request) -> Response:
        return await archive_stream(store, request)

    async def preview_file(request: Request) -> Response:
        return await preview(store, request)

    v2 = [
        ("/mlflow-artifacts/artifacts", artifacts.list, "GET"),
        ("/mlflow-artifacts/artifacts/{path:anypath}", artifacts.download, "GET"),
        ("/mlflow-artifacts/artifacts/{path:anypath}", artifacts.upload, "PUT"),
        ("/mlflow-artifacts/artifacts/{path:anypath}", artifacts.delete, "DELETE"),
        ("/mlflow-artifacts/mpu/create/{path:anypath}", multipart.create, "POST"),
        ("/mlflow-artifacts/mpu/complete/{path:anypath}", multipart.complete, "POST"),
        ("/mlflow-artifacts/mpu/abort/{path:anypath}", multipart.abort, "POST"),
        ("/mlflow-artifacts/mpu/parts/{path:anypath}", multipart.parts, "POST"),
        ("/mlflow-artifacts/presigned/{path:anypath}", multipart.presigned, "GET"),
        ("/mlflow-artifacts/batch/upload/{path:anypath}", batch.upload, "POST"),
        ("/mlflow-artifacts/batch/download/{path:anypath}", batch.download, "POST"),
        ("/mlflow-artifacts/archive/{path:anypath}", archive, "GET"),
        ("/mlflow-artifacts/preview/{path:anypath}", preview_file, "GET"),
    ]
    v3 = [("/mlflow/server-info", multipart.server_info, "GET")]
    # Full paths rather than Mounts: a Mount's own catch-all would not match every
    # character, and unsafe paths must reach the handlers to be refused with a 400.
    prefix = config.static_prefix
    routes: list[BaseRoute] = [
        Route(f"{prefix}{api}{path}", endpoint, methods=[method])
        for api, table in (("/api/2.0", v2), ("/ajax-api/2.0", v2), ("/api/3.0", v3), ("/ajax-api/3.0", v3))
        for path, endpoint, method in table
    ]
    routes += [
        Route(f"{prefix}/health", _health, methods=["GET"]),
        Route(f"{prefix}/version", _version, methods=["GET"]),
    ]
    browser = BrowserPage(prefix)
    routes += [
        Route(f"{prefix}/", browser.page, methods=["GET"]),
        Route(f"{prefix}/static/{{name}}", browser.asset, methods=["GET"]),
    ]
    if prefix:
        routes.append(Route(prefix, browser.page, methods=["GET"]))
    metrics = Metrics(config.expose_prometheus) if config.expose_prometheus else None
    if metrics is not None:
        routes.append(Route(f"{prefix}/metrics", metrics.endpoint, methods=["GET"]))

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        # Start the worker-thread machinery now, not on the first request.
        await anyio.to_thread.run_sync(lambda: None)
        yield
        store.close()
        if metrics is not None:
            metrics.process_exit()

    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        exception_handlers={
            ArtifactError: handle_artifact_error,
            ApiError: handle_api_error,
            HTTPException: _http_error,
            Exception: handle_internal_error,
        },
    )
    app.state.store = store
    app.state.hidden_locations = _locations(store)
    app.state.metrics = metrics
    wrapped: ASGIApp = app
    credentials = Credentials.load(config.users_file, config.tokens_file)
    health = config.static_prefix + "/health"
    if credentials is not None:
        wrapped = AuthMiddleware(wrapped, credentials, exempt=(health,))
    if not config.disable_security_middleware:
        policy = SecurityPolicy.from_options(
            config.allowed_hosts, config.cors_allowed_origins, config.host, config.x_frame_options
        )
        # Outside authentication: a browser's CORS preflight carries no credentials.
        wrapped = SecurityMiddleware(wrapped, policy, exempt=(health,))
    return AccessLogMiddleware(
        wrapped, RouteNames(routes), json_format=config.access_log_format == "json", metrics=metrics
    )


def app_from_env() -> Any:
    """The app for a uvicorn worker, configured by the ``mlartifacts server`` that started it."""
    return create_app(ServerConfig.imported())
