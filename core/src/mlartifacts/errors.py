"""The one error vocabulary of mlartifacts.

Every backend translates its SDK's errors into these types at its boundary
(``raise NotFound(...) from exc``), so applications catch one set of exceptions
whatever the storage behind a URI::

    ArtifactError
    ├── NotFound                 (also FileNotFoundError)
    ├── AlreadyExists            (also FileExistsError)
    ├── PreconditionFailed       the object changed under a condition (generation, ETag)
    ├── PermissionDenied         (also PermissionError)
    ├── Unauthenticated
    ├── NotSupported
    ├── InvalidPath              (also ValueError)
    ├── InvalidUri               (also ValueError)
    ├── ConfigError              (also ValueError)
    ├── PluginError
    │   ├── NoBackend            no installed plugin claims the URI's scheme
    │   └── PluginUnavailable    the plugin for the scheme failed to load
    └── TransferError            moving bytes failed
        ├── TransientError       worth retrying: throttling, 5xx, dropped connection
        ├── IntegrityError       size or checksum of received bytes is wrong (transient)
        ├── OperationTimeout     MLFLOW_ARTIFACT_UPLOAD_DOWNLOAD_TIMEOUT elapsed
        └── BackendError         anything else a backend raised (permanent)

``error.transient`` tells the transfer engine whether retrying can help.
"""

from __future__ import annotations

__all__ = [
    "AlreadyExists",
    "ArtifactError",
    "BackendError",
    "ConfigError",
    "IntegrityError",
    "InvalidPath",
    "InvalidUri",
    "NoBackend",
    "NotFound",
    "NotSupported",
    "OperationTimeout",
    "PermissionDenied",
    "PluginError",
    "PluginUnavailable",
    "PreconditionFailed",
    "TransferError",
    "TransientError",
    "Unauthenticated",
]


class ArtifactError(Exception):
    """Base class of every error mlartifacts raises on purpose."""

    #: Whether retrying the same operation may succeed.
    transient: bool = False

    def __init__(self, message: str) -> None:
        # One positional argument only: OSError subclasses below would otherwise
        # read (errno, strerror) out of the arguments and garble str(error).
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class NotFound(ArtifactError, FileNotFoundError):
    """The artifact, directory, bucket or container does not exist."""


class AlreadyExists(ArtifactError, FileExistsError):
    """The target exists and the operation does not overwrite."""


class PreconditionFailed(ArtifactError):
    """A condition on the object (its generation, ETag...) no longer holds: it changed meanwhile."""


class PermissionDenied(ArtifactError, PermissionError):
    """The credentials are valid but not allowed to do this."""


class Unauthenticated(ArtifactError):
    """The credentials are missing, wrong or expired."""


class NotSupported(ArtifactError):
    """The backend cannot do this operation (a missing capability)."""


class InvalidPath(ArtifactError, ValueError):
    """An artifact path is unsafe or malformed (``..``, absolute, NUL...)."""


class InvalidUri(ArtifactError, ValueError):
    """An artifact URI cannot be parsed by the plugin that claims its scheme."""


class ConfigError(ArtifactError, ValueError):
    """A setting (usually an environment variable) has an invalid value."""


class PluginError(ArtifactError):
    """A problem finding or loading the plugin for a URI."""


class NoBackend(PluginError):
    """No installed plugin claims the URI's scheme."""


class PluginUnavailable(PluginError):
    """The plugin that claims the scheme is installed but failed to load."""


class TransferError(ArtifactError):
    """Moving bytes to or from a backend failed."""


class TransientError(TransferError):
    """A failure that retrying may cure: throttling, 5xx, a dropped connection."""

    transient = True


class IntegrityError(TransferError):
    """Received bytes do not match the size or checksum the backend announced."""

    # A truncated or corrupted read is usually the network's fault: try again.
    transient = True


class OperationTimeout(TransferError):
    """An operation ran past its deadline (MLFLOW_ARTIFACT_UPLOAD_DOWNLOAD_TIMEOUT)."""


class BackendError(TransferError):
    """A backend failed in a way it did not classify; treated as permanent."""
