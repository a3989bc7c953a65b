"""Amazon S3 and S3-compatible stores (MinIO, SeaweedFS, Ceph...): ``s3://<bucket>/<prefix>``.

Credentials come from boto3's own chain; the other settings are MLflow's
(``MLFLOW_S3_ENDPOINT_URL``, ``MLFLOW_S3_IGNORE_TLS``, ``MLFLOW_S3_UPLOAD_EXTRA_ARGS``...,
see :mod:`mlartifacts_s3._config`). Writes are atomic as S3 makes them: an object
appears whole when its PUT or its multipart completion succeeds. boto3 is
imported on first use of an ``s3://`` URI, never when this module is imported.

Modules: ``_config`` (settings), ``_client`` (shared clients), ``_root`` (URIs),
``_errors`` (the error table), ``_objects`` and ``_multipart`` (the hooks), ``_fast``
(batches of small objects over obstore).
"""

from __future__ import annotations

from typing import Sequence

from mlartifacts import Capabilities, MultipartLimits, Settings, hookimpl

from ._config import S3Config
from ._fast import download_batch, upload_batch, usable
from ._multipart import (
    LIMITS,
    abort_multipart,
    complete_multipart,
    create_multipart,
    list_multipart_uploads,
    list_parts,
    presign,
    upload_part,
)
from ._objects import copy, delete, download, list_entries, read, stat, upload, write
from ._root import S3Root, parse_uri

__all__ = [
    "S3Config",
    "S3Root",
    # hooks
    "abort_multipart",
    "capabilities",
    "complete_multipart",
    "copy",
    "create_multipart",
    "delete",
    "download",
    "download_batch",
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
    "upload_batch",
    "upload_part",
    "write",
]


@hookimpl
def schemes() -> Sequence[str]:
    return ["s3"]


@hookimpl
def resolve_uri(uri: str, settings: Settings) -> S3Root:
    root = parse_uri(uri, S3Config.from_env(settings=settings))
    root.client  # noqa: B018 - made (and its settings checked) now, not in the middle of a transfer
    return root


@hookimpl
def capabilities(root: S3Root | None) -> Capabilities:
    # Batches (small files over obstore, many requests in flight) where obstore can
    # make this root's requests as boto3 would; elsewhere every file goes through boto3.
    return Capabilities(
        ranged_read=True,
        presign=True,
        server_side_copy=True,
        list_multipart_uploads=True,
        list_parts=True,
        batch=root is not None and usable(root),
    )


@hookimpl
def supports_multipart() -> MultipartLimits:
    return LIMITS
