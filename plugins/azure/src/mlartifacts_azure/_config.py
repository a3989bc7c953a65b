"""Azure settings, read from the environment once per resolved URI, with MLflow's names and meanings.

| variable | meaning |
|---|---|
| ``AZURE_STORAGE_CONNECTION_STRING`` | first credential (its ``BlobEndpoint`` is honoured) |
| ``AZURE_STORAGE_ACCESS_KEY`` | second credential: the key of the URI's account |
| (neither set) | ``DefaultAzureCredential`` (environment, workload/managed identity, CLI...) |
| ``MLARTIFACTS_AZURE_BLOB_ENDPOINT`` | Blob service URL instead of the URI's (Azurite, private endpoints) |
| ``MLFLOW_ARTIFACT_UPLOAD_DOWNLOAD_TIMEOUT`` | seconds one request may take (default 600; -1: none) |
| ``MLFLOW_TRACKING_INSECURE_TLS`` | ``true``: do not verify the endpoint's certificate (as MLflow) |
| ``MLFLOW_TRACKING_SERVER_CERT_PATH`` | CA bundle to verify the Blob endpoint with (as MLflow) |
| ``MLARTIFACTS_MAX_WORKERS`` | sizes the connection pool (two per engine worker) |

A request's timeout is never longer than the engine's deadline (``Settings.timeout``,
which may be set in code): a call the engine gave up on ends with it.
Secrets stay in the config (the client needs them) but out of its ``repr``.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from typing import Mapping
from urllib.parse import urlsplit

from mlartifacts import Settings
from mlartifacts.config import env_bool, env_str
from mlartifacts.errors import ConfigError

__all__ = ["DEFAULT_TIMEOUT", "AzureConfig", "parse_connection_string"]

#: MLflow's Azure Blob repository bounds uploads by 600 s unless told otherwise.
DEFAULT_TIMEOUT = 600.0

ENDPOINT_VAR = "MLARTIFACTS_AZURE_BLOB_ENDPOINT"
CONNECTION_STRING_VAR = "AZURE_STORAGE_CONNECTION_STRING"
ACCESS_KEY_VAR = "AZURE_STORAGE_ACCESS_KEY"
TIMEOUT_VAR = "MLFLOW_ARTIFACT_UPLOAD_DOWNLOAD_TIMEOUT"
# What DefaultAzureCredential reads: a change of any of them is a different identity.
_IDENTITY_PREFIXES = ("AZURE_", "IDENTITY_", "MSI_", "IMDS_")


@dataclass(frozen=True)
class AzureConfig:
    """Everything that shapes a Blob service client. Equal configs share one client (see :mod:`._client`)."""

    connection_string: str | None = field(default=None, repr=False)
    access_key: str | None = field(default=None, repr=False)
    endpoint: str | None = None  # MLARTIFACTS_AZURE_BLOB_ENDPOINT, without a trailing '/'
    timeout: float | None = DEFAULT_TIMEOUT
    verify: bool | str = True  # False: no TLS check; a path: CA bundle
    max_connections: int = 20
    identity_environment: str = ""  # digest of the variables DefaultAzureCredential reads

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None, settings: Settings | None = None
    ) -> AzureConfig:
        """Read and check the settings; an invalid value raises ConfigError naming its variable.

        ``settings`` are the engine's (what the store runs with); without them, the
        environment's.
        """
        env = os.environ if environ is None else environ
        engine = settings if settings is not None else Settings.from_env(env)
        connection_string = env_str(CONNECTION_STRING_VAR, None, env)
        if connection_string is not None:
            parse_connection_string(connection_string)  # refused now, not mid-transfer
        return cls(
            connection_string=connection_string,
            access_key=env_str(ACCESS_KEY_VAR, None, env),
            endpoint=_endpoint(env),
            # Each request's timeout, capped by the engine's deadline for a whole operation
            # (a Settings given in code may set a shorter one than the environment): a
            # request on a silent server ends with the operation that gave up on it.
            timeout=_capped(_timeout(env), engine.timeout),
            verify=_verify(env),
            # The engine runs two pools of max_workers threads (files, and parts or
            # ranges); each may hold a connection, and a full pool drops connections.
            max_connections=2 * engine.max_workers,
            identity_environment=_identity_digest(env),
        )

    @property
    def credential_source(self) -> str:
        """Which credential this config uses, in MLflow's order (for messages)."""
        if self.connection_string:
            return CONNECTION_STRING_VAR
        if self.access_key:
            return ACCESS_KEY_VAR
        return "DefaultAzureCredential"


def parse_connection_string(text: str) -> dict[str, str]:
    """``Key=Value;...`` pairs of a connection string (keys as written); ConfigError if malformed."""
    pairs: dict[str, str] = {}
    for item in text.strip().strip(";").split(";"):
        if not item.strip():
            continue
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            # Never echo the string: it holds the account key.
            raise ConfigError(
                f"{CONNECTION_STRING_VAR} is not a connection string of Key=Value pairs separated by ';' "
                "(as the portal's 'Access keys' page shows it)"
            )
        pairs[key.strip()] = value.strip()
    lowered = {k.lower() for k in pairs}
    if not lowered & {"accountkey", "sharedaccesssignature"}:
        raise ConfigError(f"{CONNECTION_STRING_VAR} holds neither AccountKey nor SharedAccessSignature")
    if not lowered & {"accountname", "blobendpoint"}:
        raise ConfigError(f"{CONNECTION_STRING_VAR} names neither AccountName nor BlobEndpoint")
    return pairs


def _endpoint(env: Mapping[str, str]) -> str | None:
    value = env_str(ENDPOINT_VAR, None, env)
    if value is None:
        return None
    parts = urlsplit(value.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
        raise ConfigError(
            f"{ENDPOINT_VAR} must be the Blob service URL, such as https://myaccount.privatelink.blob."
            f"core.windows.net or http://127.0.0.1:10000/devstoreaccount1 (Azurite), got {value!r}"
        )
    return value.strip().rstrip("/")


def _capped(timeout: float | None, deadline: float | None) -> float | None:
    return timeout if deadline is None else deadline if timeout is None else min(timeout, deadline)


def _timeout(env: Mapping[str, str]) -> float | None:
    value = env.get(TIMEOUT_VAR)
    if value is None or not value.strip():
        return DEFAULT_TIMEOUT
    try:
        seconds = float(value.strip())
    except ValueError:
        seconds = float("nan")
    if seconds == -1:
        return None
    if not seconds > 0:  # also catches NaN
        raise ConfigError(
            f"{TIMEOUT_VAR} must be a positive number of seconds or -1 (no timeout), got {value!r}"
        )
    return seconds


def _verify(env: Mapping[str, str]) -> bool | str:
    insecure = env_bool("MLFLOW_TRACKING_INSECURE_TLS", False, env)
    bundle = env_str("MLFLOW_TRACKING_SERVER_CERT_PATH", None, env)
    if insecure and bundle:
        raise ConfigError(
            "MLFLOW_TRACKING_INSECURE_TLS and MLFLOW_TRACKING_SERVER_CERT_PATH are both set: "
            "set one, not both"
        )
    if insecure:
        return False
    if bundle:
        if not os.path.isfile(bundle):
            raise ConfigError(f"MLFLOW_TRACKING_SERVER_CERT_PATH names {bundle!r}, which is not a file")
        return bundle
    return True


def _identity_digest(env: Mapping[str, str]) -> str:
    found = sorted((k, v) for k, v in env.items() if k.startswith(_IDENTITY_PREFIXES))
    return hashlib.sha256(json.dumps(found).encode()).hexdigest()
