"""S3 settings, read from the environment once per resolved URI, with MLflow's names and meanings.

| variable | meaning |
|---|---|
| ``MLFLOW_S3_ENDPOINT_URL`` | S3-compatible endpoint (MinIO, SeaweedFS, Ceph...); unset: AWS |
| ``MLFLOW_S3_IGNORE_TLS`` | ``true``: do not verify the endpoint's TLS certificate |
| ``AWS_CA_BUNDLE`` | CA bundle to verify it with (not together with ``MLFLOW_S3_IGNORE_TLS``) |
| ``MLFLOW_S3_UPLOAD_EXTRA_ARGS`` | JSON object merged into every upload request (SSE, ACL, metadata...) |
| ``MLFLOW_S3_EXPECTED_BUCKET_OWNER`` | account id sent as ``ExpectedBucketOwner`` on every request |
| ``MLFLOW_BOTO_CLIENT_ADDRESSING_STYLE`` | ``auto`` (default), ``path`` or ``virtual`` |
| ``MLFLOW_EXPERIMENTAL_S3_SIGNATURE_VERSION`` | ``s3v4`` (default) or ``unsigned`` (public buckets) |

Credentials, region and profile come from boto3's own chain (``AWS_*`` variables,
``~/.aws``, instance roles); a digest of the ``AWS_*`` environment tells clients
made under different credentials apart without keeping secrets in the key.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from typing import Any, Mapping
from urllib.parse import urlsplit

from mlartifacts import Settings
from mlartifacts.config import env_json_object, env_str, storage_tls_verify
from mlartifacts.errors import ConfigError

__all__ = ["S3Config"]

ADDRESSING_STYLES = ("auto", "path", "virtual")
SIGNATURE_VERSIONS = ("s3v4", "unsigned")
#: botocore's own default connect and read timeouts.
SOCKET_TIMEOUT = 60.0


@dataclass(frozen=True)
class S3Config:
    """Everything that shapes an S3 client and the requests it sends.

    Equal configs share one client (see :mod:`._client`).
    """

    endpoint_url: str | None = None
    verify: bool | str | None = None  # False: no TLS check; a path: CA bundle; None: boto3's default
    addressing_style: str = "auto"
    unsigned: bool = False
    expected_bucket_owner: str | None = None
    upload_extra_args: str = "{}"  # canonical JSON, so the config stays hashable
    max_pool_connections: int = 20
    socket_timeout: float = SOCKET_TIMEOUT  # botocore's connect and read timeouts
    aws_environment: str = ""  # digest of the AWS_* variables boto3 reads

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, settings: Settings | None = None) -> S3Config:
        """Read and check the settings; an invalid value raises ConfigError naming its variable.

        ``settings`` are the engine's (what the store runs with); without them, the
        environment's.
        """
        env = os.environ if environ is None else environ
        engine = settings if settings is not None else Settings.from_env(env)
        return cls(
            endpoint_url=_endpoint(env),
            verify=storage_tls_verify(env),
            addressing_style=_choice("MLFLOW_BOTO_CLIENT_ADDRESSING_STYLE", ADDRESSING_STYLES, "auto", env),
            unsigned=_choice("MLFLOW_EXPERIMENTAL_S3_SIGNATURE_VERSION", SIGNATURE_VERSIONS, "s3v4", env)
            == "unsigned",
            expected_bucket_owner=env_str("MLFLOW_S3_EXPECTED_BUCKET_OWNER", None, env),
            upload_extra_args=json.dumps(
                env_json_object("MLFLOW_S3_UPLOAD_EXTRA_ARGS", env), sort_keys=True, separators=(",", ":")
            ),
            # The engine runs two pools of max_workers threads (files, and parts or
            # ranges); each may hold a connection, and a full pool drops connections.
            max_pool_connections=2 * engine.max_workers,
            # The engine gives up on a call at MLFLOW_ARTIFACT_UPLOAD_DOWNLOAD_TIMEOUT; a
            # socket waiting longer would only keep an abandoned request (and its
            # connection) alive on a hung storage.
            socket_timeout=min(SOCKET_TIMEOUT, engine.timeout) if engine.timeout else SOCKET_TIMEOUT,
            aws_environment=_aws_digest(env),
        )

    @property
    def extra_args(self) -> dict[str, Any]:
        """``MLFLOW_S3_UPLOAD_EXTRA_ARGS`` as a fresh dict."""
        parsed: dict[str, Any] = json.loads(self.upload_extra_args)
        return parsed

    @property
    def endpoint_netloc(self) -> str | None:
        """``host[:port]`` of the custom endpoint, lowercased, if one is set."""
        return urlsplit(self.endpoint_url).netloc.lower() if self.endpoint_url else None


def _endpoint(env: Mapping[str, str]) -> str | None:
    name = "MLFLOW_S3_ENDPOINT_URL"
    value = env_str(name, None, env)
    if value is None:
        return None
    parts = urlsplit(value.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(
            f"{name} must be an http:// or https:// URL such as http://minio:9000, got {value!r}"
        )
    return value.strip().rstrip("/")


def _choice(name: str, allowed: tuple[str, ...], default: str, env: Mapping[str, str]) -> str:
    value = (env_str(name, default, env) or default).strip().lower()
    if value not in allowed:
        raise ConfigError(f"{name} must be one of {', '.join(allowed)}, got {env.get(name)!r}")
    return value


def _aws_digest(env: Mapping[str, str]) -> str:
    aws = sorted((k, v) for k, v in env.items() if k.startswith("AWS_"))
    return hashlib.sha256(json.dumps(aws).encode()).hexdigest()
