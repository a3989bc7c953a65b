"""Google Cloud Storage: ``gs://<bucket>/<prefix>``.

Credentials are Application Default Credentials (``GOOGLE_APPLICATION_CREDENTIALS``,
gcloud's user credentials, the metadata server); without any, resolving a URI fails
with Unauthenticated, saying how to provide them. Anonymous access only when asked
(``MLARTIFACTS_GCS_ANONYMOUS=true``); ``STORAGE_EMULATOR_HOST`` points at an
emulator. Other settings are MLflow's (see :mod:`mlartifacts_gcs._config`). Large
files go up as parallel composite uploads (:mod:`._multipart`). google-cloud-storage
is imported on first use of a ``gs://`` URI, never when this module is imported.

Modules: ``_config`` (settings), ``_client`` (shared clients), ``_root`` (URIs),
``_errors`` (the error table), ``_objects`` and ``_multipart`` (the hooks).
"""

from __future__ import annotations

from typing import Sequence

from mlartifacts import Capabilities, MultipartLimits, Settings, hookimpl

from ._config import GCSConfig
from ._multipart import (
    LIMITS,
    abort_multipart,
    can_sign,
    complete_multipart,
    create_multipart,
    list_multipart_uploads,
    list_parts,
    presign,
    upload_part,
)
from ._objects import copy, delete, download, list_entries, read, stat, upload, write
from ._root import GCSRoot, parse_uri

__all__ = [
    "GCSConfig",
    "GCSRoot",
    # hooks
    "abort_multipart",
    "capabilities",
    "complete_multipart",
    "copy",
    "create_multipart",
    "delete",
    "download",
    "list_entries",
    "list_multipart_uploads",
    "list_parts",
    "presign",
    "read",
    "resolve_uri",
    "schemes",
    "stat",
    "supports_multipart",
    "upload",
    "upload_part",
    "write",
]


@hookimpl
def schemes() -> Sequence[str]:
    return ["gs"]


@hookimpl
def resolve_uri(uri: str, settings: Settings) -> GCSRoot:
    root = parse_uri(uri, GCSConfig.from_env(settings=settings))
    root.client  # noqa: B018 - made (credentials found, settings checked) now, not mid-transfer
    return root


@hookimpl
def capabilities(root: GCSRoot | None) -> Capabilities:
    # Presigning needs credentials that sign (a service-account key); at a root resolved
    # with others (user credentials, anonymous access), the service then answers 501 to
    # /mpu/create and /presigned, and clients fall back to uploads through it.
    presign = root is None or can_sign(root)
    return Capabilities(
        ranged_read=True, presign=presign, server_side_copy=True, list_multipart_uploads=True, list_parts=True
    )


@hookimpl
def supports_multipart() -> MultipartLimits:
    return LIMITS
