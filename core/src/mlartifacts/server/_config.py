"""The server's options, named as ``mlflow server`` names them, with MLflow's environment variables."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from typing import Mapping

from ..config import env_bool, env_int, env_str
from ..errors import ConfigError

__all__ = ["ServerConfig"]

_ENV = "_MLARTIFACTS_SERVER_CONFIG"  # how the options reach uvicorn's worker processes


@dataclass(frozen=True)
class ServerConfig:
    """Options of ``mlartifacts server``.

    Attributes:
        artifacts_destination: where artifacts are stored: any URI a plugin resolves
            (``MLFLOW_ARTIFACTS_DESTINATION``; default ``./mlartifacts``).
        default_artifact_root: reported in ``/server-info`` for tracking servers that
            point at this one (``MLFLOW_DEFAULT_ARTIFACT_ROOT``).
        artifacts_only: accepted for compatibility; this server only serves artifacts.
        host, port, workers: where and how to listen (``MLFLOW_WORKERS``).
        static_prefix: a path prefix for every route, e.g. ``/mlflow`` (``MLFLOW_STATIC_PREFIX``).
        users_file, tokens_file: turn authentication on (see ``server._auth``).
        allowed_hosts: comma-separated ``Host`` patterns served (``MLFLOW_SERVER_ALLOWED_HOSTS``;
            default localhost, loopback and private addresses); see ``server._security``.
        cors_allowed_origins: comma-separated origins whose browser pages may write
            (``MLFLOW_SERVER_CORS_ALLOWED_ORIGINS``; default localhost origins).
        x_frame_options: the ``X-Frame-Options`` header (``MLFLOW_SERVER_X_FRAME_OPTIONS``).
        disable_security_middleware: turn the Host and Origin checks off
            (``MLFLOW_SERVER_DISABLE_SECURITY_MIDDLEWARE``).
        expose_prometheus: a directory for Prometheus' multi-process samples; serves
            ``/metrics`` when set (``MLFLOW_EXPOSE_PROMETHEUS``).
        access_log_format: ``text`` (one line per request) or ``json`` (one object per
            line) (``MLARTIFACTS_ACCESS_LOG_FORMAT``).
    """

    artifacts_destination: str = "./mlartifacts"
    default_artifact_root: str | None = None
    artifacts_only: bool = True
    host: str = "127.0.0.1"
    port: int = 5000
    workers: int = 1
    static_prefix: str = ""
    users_file: str | None = None
    tokens_file: str | None = None
    allowed_hosts: str | None = None
    cors_allowed_origins: str | None = None
    x_frame_options: str = "SAMEORIGIN"
    disable_security_middleware: bool = False
    expose_prometheus: str | None = None
    access_log_format: str = "text"

    def __post_init__(self) -> None:
        prefix = self.static_prefix
        if prefix and (not prefix.startswith("/") or prefix.endswith("/")):
            raise ConfigError(f"--static-prefix must start with '/' and not end with '/', got {prefix!r}")
        if not 0 < self.port < 65536:
            raise ConfigError(f"--port must be between 1 and 65535, got {self.port}")
        if self.workers < 1:
            raise ConfigError(f"--workers must be at least 1, got {self.workers}")
        if self.access_log_format not in ("text", "json"):
            raise ConfigError(f"--access-log-format must be 'text' or 'json', got {self.access_log_format!r}")

    @classmethod
    def defaults_from_env(cls, environ: Mapping[str, str] | None = None) -> ServerConfig:
        """Defaults as MLflow's server reads them from the environment."""
        d = cls()
        return cls(
            artifacts_destination=env_str("MLFLOW_ARTIFACTS_DESTINATION", d.artifacts_destination, environ)
            or d.artifacts_destination,
            default_artifact_root=env_str("MLFLOW_DEFAULT_ARTIFACT_ROOT", None, environ),
            artifacts_only=env_bool("MLFLOW_ARTIFACTS_ONLY", True, environ),
            host=env_str("MLFLOW_HOST", d.host, environ) or d.host,
            port=env_int("MLFLOW_PORT", d.port, environ),
            workers=env_int("MLFLOW_WORKERS", d.workers, environ, minimum=1),
            static_prefix=env_str("MLFLOW_STATIC_PREFIX", "", environ) or "",
            users_file=env_str("MLARTIFACTS_AUTH_USERS_FILE", None, environ),
            tokens_file=env_str("MLARTIFACTS_AUTH_TOKENS_FILE", None, environ),
            allowed_hosts=env_str("MLFLOW_SERVER_ALLOWED_HOSTS", None, environ),
            cors_allowed_origins=env_str("MLFLOW_SERVER_CORS_ALLOWED_ORIGINS", None, environ),
            x_frame_options=env_str("MLFLOW_SERVER_X_FRAME_OPTIONS", d.x_frame_options, environ)
            or d.x_frame_options,
            disable_security_middleware=env_bool("MLFLOW_SERVER_DISABLE_SECURITY_MIDDLEWARE", False, environ),
            expose_prometheus=env_str("MLFLOW_EXPOSE_PROMETHEUS", None, environ) or None,
            access_log_format=(env_str("MLARTIFACTS_ACCESS_LOG_FORMAT", "text", environ) or "text").lower(),
        )

    def export(self) -> None:
        """Hand these options to worker processes, through the environment."""
        os.environ[_ENV] = json.dumps(asdict(self))

    @classmethod
    def imported(cls) -> ServerConfig:
        """The options :meth:`export` handed over."""
        try:
            return cls(**json.loads(os.environ[_ENV]))
        except KeyError:
            raise ConfigError(f"{_ENV} is not set: start the server with `mlartifacts server`") from None
