"""GCS settings, read from the environment once per resolved URI, with MLflow's names and meanings.

| variable | meaning |
|---|---|
| ``MLFLOW_ARTIFACT_UPLOAD_DOWNLOAD_TIMEOUT`` | seconds each GCS request may take (default 60; -1: none) |
| ``MLFLOW_GCS_DEFAULT_TIMEOUT`` | its deprecated older name, honoured with a DeprecationWarning |
| ``MLFLOW_GCS_UPLOAD_CHUNK_SIZE`` | bytes per request of a resumable upload (default 100 MiB) |
| ``MLFLOW_GCS_DOWNLOAD_CHUNK_SIZE`` | bytes per request of a download (default 100 MiB) |
| ``STORAGE_EMULATOR_HOST`` | an emulator's URL (fake-gcs-server...): anonymous unless credentials are given |
| ``MLARTIFACTS_GCS_ANONYMOUS`` | ``true``: no credentials at all (public buckets) |

A request's timeout is never longer than the engine's deadline (``Settings.timeout``,
which may be set in code): a call the engine gave up on ends with it.
Both chunk sizes must be multiples of 256 KiB, as GCS requires of resumable upload
chunks. Credentials are Application Default Credentials (``google.auth.default()``);
a digest of the variables they come from tells clients made under different
credentials apart without keeping secrets in the key.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from dataclasses import dataclass
from typing import Mapping
from urllib.parse import urlsplit

from mlartifacts import Settings
from mlartifacts.config import env_bool, env_bytes, env_float, env_str
from mlartifacts.errors import ConfigError

__all__ = ["CHUNK_GRANULARITY", "DEFAULT_CHUNK_SIZE", "DEFAULT_TIMEOUT", "GCSConfig"]

KiB = 1024
MiB = 1024 * KiB
#: GCS accepts resumable upload chunks in multiples of 256 KiB only.
CHUNK_GRANULARITY = 256 * KiB
#: google-cloud-storage's default chunk size, which MLflow leaves in place.
DEFAULT_CHUNK_SIZE = 100 * MiB
#: google-cloud-storage's default request timeout.
DEFAULT_TIMEOUT = 60.0

TIMEOUT = "MLFLOW_ARTIFACT_UPLOAD_DOWNLOAD_TIMEOUT"
OLD_TIMEOUT = "MLFLOW_GCS_DEFAULT_TIMEOUT"
# Where ADC and the emulator settings come from (their values never enter the key itself).
_CREDENTIAL_PREFIXES = ("GOOGLE_", "CLOUDSDK_", "GCE_", "NO_GCE_CHECK", "STORAGE_EMULATOR_HOST")


@dataclass(frozen=True)
class GCSConfig:
    """Everything that shapes a GCS client and the requests it sends.

    Equal configs share one client (see :mod:`._client`).
    """

    timeout: float | None = DEFAULT_TIMEOUT  # per request; None: wait forever
    upload_chunk_size: int = DEFAULT_CHUNK_SIZE
    download_chunk_size: int = DEFAULT_CHUNK_SIZE
    emulator_host: str | None = None
    anonymous: bool = False
    max_pool_connections: int = 20
    environment: str = ""  # digest of the variables credentials are found through

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None, settings: Settings | None = None
    ) -> GCSConfig:
        """Read and check the settings; an invalid value raises ConfigError naming its variable.

        ``settings`` are the engine's (what the store runs with); without them, the
        environment's.
        """
        env = os.environ if environ is None else environ
        engine = settings if settings is not None else Settings.from_env(env)
        return cls(
            # Each request's timeout, capped by the engine's deadline for a whole operation
            # (a Settings given in code may set a shorter one than the environment): a
            # request on a silent server ends with the operation that gave up on it.
            timeout=_capped(_timeout(env), engine.timeout),
            upload_chunk_size=_chunk_size("MLFLOW_GCS_UPLOAD_CHUNK_SIZE", env),
            download_chunk_size=_chunk_size("MLFLOW_GCS_DOWNLOAD_CHUNK_SIZE", env),
            emulator_host=_emulator(env),
            anonymous=env_bool("MLARTIFACTS_GCS_ANONYMOUS", False, env),
            # The engine runs two pools of max_workers threads (files, and parts or
            # ranges); each may hold a connection, and a full pool drops connections.
            max_pool_connections=2 * engine.max_workers,
            environment=_digest(env),
        )

    @property
    def endpoint(self) -> str:
        """The JSON API's base URL: the emulator's, or Google's."""
        return self.emulator_host or "https://storage.googleapis.com"


def _capped(timeout: float | None, deadline: float | None) -> float | None:
    return timeout if deadline is None else deadline if timeout is None else min(timeout, deadline)


def _timeout(env: Mapping[str, str]) -> float | None:
    name = TIMEOUT
    old = env_str(OLD_TIMEOUT, None, env)
    if old is not None:
        used = env_str(TIMEOUT, None, env) is None
        warnings.warn(
            f"{OLD_TIMEOUT} is deprecated: set {TIMEOUT} instead"
            + ("" if used else f" ({TIMEOUT} is set and wins)"),
            DeprecationWarning,
            stacklevel=2,
        )
        if used:
            name = OLD_TIMEOUT
    seconds = env_float(name, None, env)
    if seconds is None:
        return DEFAULT_TIMEOUT
    if seconds == -1:
        return None
    if not seconds > 0:  # also NaN
        raise ConfigError(
            f"{name} must be a positive number of seconds or -1 (no timeout), got {env[name]!r}"
        )
    return seconds


def _chunk_size(name: str, env: Mapping[str, str]) -> int:
    size = env_bytes(name, DEFAULT_CHUNK_SIZE, env)
    if size % CHUNK_GRANULARITY:
        raise ConfigError(
            f"{name} must be a multiple of 256 KiB (262144 bytes), as GCS requires, got {env[name]!r} "
            f"({size} bytes); e.g. {max(1, size // CHUNK_GRANULARITY) * CHUNK_GRANULARITY}"
        )
    return size


def _emulator(env: Mapping[str, str]) -> str | None:
    name = "STORAGE_EMULATOR_HOST"
    value = env_str(name, None, env)
    if value is None:
        return None
    value = value.strip().rstrip("/")
    # As google-cloud-storage: the scheme may be left out ("localhost:4443" means http).
    if "://" not in value:
        value = f"http://{value}"
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(f"{name} must be an emulator's URL such as http://127.0.0.1:4443, got {value!r}")
    return value


def _digest(env: Mapping[str, str]) -> str:
    found = sorted((k, v) for k, v in env.items() if k.startswith(_CREDENTIAL_PREFIXES))
    return hashlib.sha256(json.dumps(found).encode()).hexdigest()
