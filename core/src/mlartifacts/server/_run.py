"""Serving the app with uvicorn: one process, or several workers."""

from __future__ import annotations

import copy
import logging
from typing import Any

from ._config import ServerConfig
from ._protocol import LimitedHttpToolsProtocol

__all__ = ["run"]

log = logging.getLogger("mlartifacts.server")


def _log_config(json_access_log: bool = False) -> dict[str, Any]:
    from uvicorn.config import LOGGING_CONFIG

    config: dict[str, Any] = copy.deepcopy(LOGGING_CONFIG)
    config["loggers"]["mlartifacts"] = {"handlers": ["default"], "level": "INFO", "propagate": False}
    if json_access_log:
        # One JSON object per line and nothing else on it, for log shippers.
        config["formatters"]["bare"] = {"format": "%(message)s"}
        config["handlers"]["access_json"] = {
            "formatter": "bare",
            "class": "logging.StreamHandler",
            "stream": "ext://sys.stdout",
        }
        config["loggers"]["mlartifacts.server.access"] = {
            "handlers": ["access_json"],
            "level": "INFO",
            "propagate": False,
        }
    return config


def check_destination(uri: str) -> None:
    """Fail now if the destination refuses the server's credentials; warn if it cannot be reached.

    Otherwise a server without storage credentials would start and answer every client
    with an error that reads as if the client's own login were wrong.
    """
    from ..config import Settings
    from ..errors import ArtifactError, ConfigError, PermissionDenied, Unauthenticated
    from ..store import ArtifactStore

    with ArtifactStore(uri, settings=Settings.from_env().replace(max_retries=0)) as store:
        try:
            store.list_artifacts("")
        except (Unauthenticated, PermissionDenied) as exc:
            raise ConfigError(
                f"the artifacts destination {store.backend.display_uri} refused the server's "
                f"credentials: {exc}"
            ) from exc
        except ArtifactError as exc:
            log.warning(
                "the artifacts destination %s could not be checked: %s", store.backend.display_uri, exc
            )


def run(config: ServerConfig) -> None:
    """Serve until interrupted. Fails early (before listening) if the destination is unusable."""
    import uvicorn

    from ._app import create_app
    from ._metrics import prepare_directory

    if config.expose_prometheus:
        prepare_directory(config.expose_prometheus)  # before any worker imports prometheus-client
    # Resolve the destination now, so a missing plugin or a bad URI is a clear error
    # at start-up rather than a 500 on the first request.
    create_app(config)
    check_destination(config.artifacts_destination)
    config.export()
    logging.getLogger("mlartifacts.server").info(
        "serving %s on http://%s:%d%s",
        config.artifacts_destination,
        config.host,
        config.port,
        config.static_prefix,
    )
    uvicorn.run(
        "mlartifacts.server._app:app_from_env",
        factory=True,
        host=config.host,
        port=config.port,
        workers=config.workers,
        access_log=False,  # the app logs one line per request itself
        log_config=_log_config(config.access_log_format == "json"),
        server_header=False,
        http=LimitedHttpToolsProtocol,  # limits on request heads (size, count, time)
        timeout_graceful_shutdown=10,
    )
