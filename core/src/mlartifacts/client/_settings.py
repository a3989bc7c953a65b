"""The client's settings, from MLflow's environment variables (and ~/.mlflow/credentials)."""

from __future__ import annotations

import configparser
import functools
import os
from dataclasses import dataclass
from pathlib import Path

from .._types import GiB, MiB
from ..config import env_bool, env_bytes, env_float, env_str, storage_tls_verify
from ..errors import ConfigError

__all__ = ["ClientSettings"]


def _credentials_file() -> tuple[str | None, str | None]:
    path = Path(os.environ.get("MLFLOW_CREDENTIALS_FILE") or Path.home() / ".mlflow" / "credentials")
    parser = configparser.ConfigParser()
    try:
        parser.read(path)
    except configparser.Error as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from None
    if not parser.has_section("mlflow"):
        return None, None
    section = parser["mlflow"]
    return section.get("mlflow_tracking_username"), section.get("mlflow_tracking_password")


def _or_true(verify: bool | str | None) -> bool | str:
    return True if verify is None else verify


@dataclass(frozen=True)
class ClientSettings:
    """How the client reaches a service (auth, TLS, timeouts) and when it uses multipart.

    Attributes:
        basic: (username, password) from ``MLFLOW_TRACKING_USERNAME``/``_PASSWORD``, or
            ``~/.mlflow/credentials``.
        token: ``MLFLOW_TRACKING_TOKEN`` (used when there is no username and password).
        verify: ``False`` with ``MLFLOW_TRACKING_INSECURE_TLS``, a CA bundle path with
            ``MLFLOW_TRACKING_SERVER_CERT_PATH``, else True.
        cert: ``MLFLOW_TRACKING_CLIENT_CERT_PATH`` (mutual TLS).
        timeout: seconds per request (``MLFLOW_HTTP_REQUEST_TIMEOUT``, 120).
        storage_verify: TLS check of presigned storage URLs: off with ``MLFLOW_S3_IGNORE_TLS``,
            against ``AWS_CA_BUNDLE`` when set (as the S3 backend checks its endpoint).
        proxy_upload / proxy_download: ``MLFLOW_ENABLE_PROXY_MULTIPART_UPLOAD`` /
            ``_DOWNLOAD``; None when unset (then ``presigned`` and the server's
            /server-info decide).
        presigned: ``MLARTIFACTS_PRESIGNED_TRANSFERS`` (true): use the presigned
            multipart uploads and ranged downloads a server advertises in /server-info,
            for ``http(s)://`` and ``mlflow-artifacts:`` URIs alike; false sends every
            byte through the server (unless an ``MLFLOW_ENABLE_PROXY_MULTIPART_*``
            variable says otherwise).
        upload_threshold / upload_chunk: ``MLFLOW_MULTIPART_UPLOAD_MINIMUM_FILE_SIZE``
            (500 MiB) / ``MLFLOW_MULTIPART_UPLOAD_CHUNK_SIZE`` (10 MiB).
    """

    basic: tuple[str, str] | None = None
    token: str | None = None
    verify: bool | str = True
    cert: str | None = None
    timeout: float = 120.0
    storage_verify: bool | str = True
    proxy_upload: bool | None = None
    proxy_download: bool | None = None
    presigned: bool = True
    upload_threshold: int = 500 * MiB
    upload_chunk: int = 10 * MiB

    @classmethod
    def from_env(cls) -> ClientSettings:
        user, password = env_str("MLFLOW_TRACKING_USERNAME"), env_str("MLFLOW_TRACKING_PASSWORD")
        if user is None and password is None:
            user, password = _credentials_file()
        insecure = env_bool("MLFLOW_TRACKING_INSECURE_TLS", False)
        ca = env_str("MLFLOW_TRACKING_SERVER_CERT_PATH")
        if insecure and ca:
            raise ConfigError(
                "MLFLOW_TRACKING_INSECURE_TLS and MLFLOW_TRACKING_SERVER_CERT_PATH cannot both be set"
            )
        timeout = env_float("MLFLOW_HTTP_REQUEST_TIMEOUT", 120.0)
        chunk = env_bytes("MLFLOW_MULTIPART_UPLOAD_CHUNK_SIZE", 10 * MiB)
        if not 5 * MiB <= chunk <= 5 * GiB:
            raise ConfigError(
                "MLFLOW_MULTIPART_UPLOAD_CHUNK_SIZE must be between 5 MiB and 5 GiB "
                f"(S3's part limits), got {chunk}"
            )
        return cls(
            basic=(user or "", password or "") if user or password else None,
            token=env_str("MLFLOW_TRACKING_TOKEN"),
            verify=False if insecure else (ca or True),
            cert=env_str("MLFLOW_TRACKING_CLIENT_CERT_PATH"),
            timeout=timeout if timeout is not None and timeout > 0 else 120.0,
            storage_verify=_or_true(storage_tls_verify()),
            proxy_upload=_tristate("MLFLOW_ENABLE_PROXY_MULTIPART_UPLOAD"),
            proxy_download=_tristate("MLFLOW_ENABLE_PROXY_MULTIPART_DOWNLOAD"),
            presigned=env_bool("MLARTIFACTS_PRESIGNED_TRANSFERS", True),
            upload_threshold=env_bytes("MLFLOW_MULTIPART_UPLOAD_MINIMUM_FILE_SIZE", 500 * MiB),
            upload_chunk=chunk,
        )

    @functools.cached_property
    def headers(self) -> dict[str, str]:
        """The Authorization header for the service (never sent to presigned storage URLs)."""
        if self.basic is not None:
            import base64

            pair = f"{self.basic[0]}:{self.basic[1]}".encode()
            return {"Authorization": "Basic " + base64.b64encode(pair).decode()}
        if self.token:
            return {"Authorization": f"Bearer {self.token}"}
        return {}


def _tristate(name: str) -> bool | None:
    return env_bool(name, False) if os.environ.get(name, "").strip() else None
