"""mlartifacts: a storage layer for machine-learning artifacts, built from plugins.

    from mlartifacts import ArtifactStore
    store = ArtifactStore("s3://bucket/experiments/1")
    store.log_artifact("model.pkl", "models")

Backends are separate distributions found through the ``mlartifacts`` entry-point
group; none of their SDKs is imported until a URI needs it.
"""

from __future__ import annotations

from . import errors
from ._registry import PluginRecord, PluginRegistry, default_registry
from ._types import (
    Capabilities,
    Checksum,
    FileInfo,
    MultipartLimits,
    Part,
    PendingUpload,
    PresignedUrl,
)
from ._version import __version__
from .config import Settings
from .hookspecs import hookimpl
from .store import ArtifactStore
from .transfer import NullProgress, Progress, TransferEngine

__all__ = [
    "ArtifactStore",
    "Capabilities",
    "Checksum",
    "FileInfo",
    "MultipartLimits",
    "NullProgress",
    "Part",
    "PendingUpload",
    "PluginRecord",
    "PluginRegistry",
    "PresignedUrl",
    "Progress",
    "Settings",
    "TransferEngine",
    "__version__",
    "default_registry",
    "errors",
    "hookimpl",
]
