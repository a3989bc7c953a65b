"""Azure Blob Storage: ``wasbs://<container>@<account>.blob.core.windows.net/<path>`` (and ``abfss://``).

Credentials in MLflow's order: ``AZURE_STORAGE_CONNECTION_STRING``, then
``AZURE_STORAGE_ACCESS_KEY``, then ``DefaultAzureCredential``; the other settings
are in :mod:`mlartifacts_azure._config`. Writes are atomic as Azure makes them: a
blob appears whole when its Put Blob or its block-list commit succeeds.
azure-storage-blob is imported on first use of an Azure URI, azure-identity only
when neither a connection string nor a key is set.

Modules: ``_config`` (settings), ``_client`` (shared clients, credentials),
``_root`` (URIs), ``_errors`` (the error table), ``_objects`` and ``_multipart`` (the hooks).
"""

from __future__ import annotations

from typing import Sequence

from mlartifacts import Capabilities, MultipartLimits, Settings, hookimpl

from ._config import AzureConfig
from ._multipart import (
    LIMITS,
    abort_multipart,
    complete_multipart,
    create_multipart,
    list_parts,
    presign,
    upload_part,
)
from ._objects import delete, download, list_entries, read, stat, upload, write
from ._root import SCHEMES, AzureRoot, parse_uri

__all__ = [
    "AzureConfig",
    "AzureRoot",
    # hooks
    "abort_multipart",
    "list_parts",
    "capabilities",
    "complete_multipart",
    "create_multipart",
    "delete",
    "download",
    "list_entries",
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
    return list(SCHEMES)


@hookimpl
def resolve_uri(uri: str, settings: Settings) -> AzureRoot:
    root = parse_uri(uri, AzureConfig.from_env(settings=settings))
    root.service  # noqa: B018 - made (and its credential chosen) now, not in the middle of a transfer
    return root


@hookimpl
def capabilities(root: AzureRoot | None) -> Capabilities:
    # A connection string that holds only a SAS cannot sign new URLs.
    presign = root is None or not isinstance(root.service.target.credential, str)
    return Capabilities(ranged_read=True, presign=presign, list_parts=True)


@hookimpl
def supports_multipart() -> MultipartLimits:
    return LIMITS
