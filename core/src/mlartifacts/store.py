"""``ArtifactStore``: what applications call, with MLflow's method names and semantics."""

from __future__ import annotations

import os
import posixpath
import shutil
import tempfile
from typing import TYPE_CHECKING, Iterable, Iterator
from urllib.parse import urlsplit

from . import paths as _paths
from ._backend import Backend, redact_uri, translate_error
from ._registry import PluginRegistry, default_registry, scheme_of
from ._types import Capabilities, FileInfo, MultipartLimits, PresignedUrl
from .config import Settings
from .errors import ArtifactError, NotFound
from .transfer import NullProgress, Progress, TransferEngine

if TYPE_CHECKING:
    from .sync import SyncResult
    from .verify import VerifyReport

__all__ = ["ArtifactStore"]


class ArtifactStore:
    """Artifacts stored under one URI, on whatever backend claims its scheme.

    Args:
        uri: a plain path, ``file:///...``, ``s3://bucket/prefix``... The plugin
            that claims the scheme parses it; nothing else sees the URI.
        settings: transfer settings (default: read from the environment).
        registry: where plugins are found (default: the installed plugins).
        progress: a listener told about every transfer this store makes.

    Paths given to methods are relative to the store root and POSIX-style;
    ``..``, absolute paths and control characters are refused with InvalidPath.
    """

    def __init__(
        self,
        uri: str,
        *,
        settings: Settings | None = None,
        registry: PluginRegistry | None = None,
        progress: Progress | None = None,
        engine: TransferEngine | None = None,
    ) -> None:
        if not isinstance(uri, str) or not uri:
            raise ValueError("an artifact URI must be a non-empty string")
        handle = (registry or default_registry()).for_scheme(scheme_of(uri))
        self.settings = settings if settings is not None else Settings.from_env()
        try:
            # The settings go to the plugin, so what it builds (connection pools, clients)
            # is sized for the threads this store's engine will run.
            root = handle.call("resolve_uri", uri=uri, settings=self.settings)
        except ArtifactError:
            raise
        except Exception as exc:
            where = redact_uri(uri)
            raise translate_error(exc, f"resolve {where!r} with the '{handle.name}' plugin") from exc
        self.uri = uri
        self.backend = Backend(handle, root, uri)
        self._owns_engine = engine is None
        self.engine = engine if engine is not None else TransferEngine(self.settings)
        self.progress: Progress = progress or NullProgress()

    def __repr__(self) -> str:
        return f"ArtifactStore({self.backend.display_uri!r})  # plugin {self.backend.name!r}"

    def __enter__(self) -> ArtifactStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop this store's worker threads."""
        if self._owns_engine:
            self.engine.close()

    @property
    def plugin(self) -> str:
        """The name of the plugin serving this store."""
        return self.backend.name

    @property
    def capabilities(self) -> Capabilities:
        """Optional features of the backend here (ranged reads, presign, copy...)."""
        return self.backend.capabilities

    @property
    def multipart_limits(self) -> MultipartLimits | None:
        """Multipart limits of the backend here, or None without multipart upload."""
        return self.backend.multipart_limits

    # -- MLflow's API ---------------------------------------------------------------------

    def log_artifact(self, local_file: str, artifact_path: str | None = None) -> None:
        """Upload a local file to ``<artifact_path>/<its name>``."""
        name = os.path.basename(os.path.normpath(local_file))
        self.upload_file(local_file, _paths.join(artifact_path, name))

    def log_artifacts(self, local_dir: str, artifact_path: str | None = None) -> None:
        """Upload the contents of a local directory (in parallel) under ``artifact_path``."""
        self.engine.upload_tree(self.backend, local_dir, _paths.normalize(artifact_path), self.progress)

    def list_artifacts(self, path: str | None = None) -> list[FileInfo]:
        """Direct children of ``path`` (the root by default), sorted by path.

        As in MLflow, a missing path or a file has no children: the result is ``[]``.
        """
        where = _paths.normalize(path)
        return self.engine.call(
            f"list {self.backend.where(where)}",
            lambda: sorted(self.backend.list(where), key=lambda info: info.path),
        )

    def download_artifacts(self, artifact_path: str, dst_path: str | None = None) -> str:
        """Download a file or directory to ``<dst_path>/<artifact_path>``; return that local path.

        ``dst_path`` defaults to a new temporary directory. Directories download in
        parallel; each file is written under a temporary name and renamed into
        place only once complete and verified.
        """
        path = _paths.normalize(artifact_path)
        if dst_path is not None:
            return self._download_into(path, os.path.abspath(dst_path))
        dst = tempfile.mkdtemp(prefix="mlartifacts-")
        try:
            return self._download_into(path, dst)
        except BaseException:
            shutil.rmtree(dst, ignore_errors=True)  # ours, and nobody was told its name
            raise

    def _download_into(self, path: str, dst: str) -> str:
        info = self.stat(path)
        if info.is_dir:
            local = _paths.local_join(dst, path)
            self.engine.download_tree(self.backend, path, local, self.progress)
            return local
        local = _paths.local_join(dst, path) if path else os.path.join(dst, self.root_name)
        self.engine.download_file(self.backend, path, local, self.progress, expected=info)
        return local

    def delete_artifacts(self, artifact_path: str | None = None) -> None:
        """Delete a file or directory (everything when ``artifact_path`` is None).

        Deleting what does not exist is not an error, as in MLflow.
        """
        try:
            self.delete(artifact_path or "")
        except NotFound:
            pass

    # -- beyond MLflow -----------------------------------------------------------------------

    def stat(self, path: str = "") -> FileInfo:
        """The file or directory at ``path``; NotFound when nothing is there."""
        where = _paths.normalize(path)
        return self.engine.call(f"stat {self.backend.where(where)}", lambda: self.backend.stat(where))

    def exists(self, path: str = "") -> bool:
        """Whether a file or directory is at ``path``."""
        try:
            self.stat(path)
        except NotFound:
            return False
        return True

    def iter_files(self, path: str = "") -> Iterator[FileInfo]:
        """Every file below ``path``, at any depth (in the backend's order)."""
        where = _paths.normalize(path)
        return self.engine.iterate(
            f"list {self.backend.where(where)}", lambda: self.backend.list(where, recursive=True)
        )

    def upload_file(self, local_file: str, path: str, progress: Progress | None = None) -> None:
        """Upload one local file to exactly ``path``."""
        self.engine.upload_file(self.backend, local_file, _paths.normalize(path), progress or self.progress)

    def upload_tree(self, local_dir: str, path: str = "", progress: Progress | None = None) -> list[str]:
        """Upload a local directory's files below ``path``; returns the artifact paths written."""
        return self.engine.upload_tree(
            self.backend, local_dir, _paths.normalize(path), progress or self.progress
        )

    def download_file(self, path: str, local_file: str, progress: Progress | None = None) -> str:
        """Download the file at ``path`` to exactly ``local_file``."""
        return self.engine.download_file(
            self.backend, _paths.normalize(path), local_file, progress or self.progress
        )

    def download_tree(self, path: str, local_dir: str, progress: Progress | None = None) -> list[str]:
        """Download every file below ``path`` into ``local_dir``; returns the local paths."""
        return self.engine.download_tree(
            self.backend, _paths.normalize(path), local_dir, progress or self.progress
        )

    def read(self, path: str, offset: int = 0, length: int | None = None) -> Iterator[bytes]:
        """Stream a file's bytes (or a range of them) as chunks."""
        return self.engine.read_stream(self.backend, _paths.normalize(path), offset, length)

    def read_bytes(self, path: str) -> bytes:
        """A whole file in memory (for small files)."""
        return b"".join(self.read(path))

    def write(
        self,
        path: str,
        chunks: Iterable[bytes],
        size_hint: int | None = None,
        progress: Progress | None = None,
        digest: str | None = None,
    ) -> None:
        """Write a file from a stream of chunks of unknown total length, atomically.

        ``digest``: the stream's SHA-256 (hex) if the caller knows it; bytes that do not
        match are refused with IntegrityError and nothing is stored.
        """
        self.engine.write_stream(
            self.backend, _paths.normalize(path), chunks, size_hint, progress or self.progress, digest
        )

    def write_bytes(self, path: str, data: bytes) -> None:
        """Write a file from bytes in memory."""
        self.write(path, [data], len(data))

    def delete(self, path: str = "") -> None:
        """Delete a file or tree; unlike ``delete_artifacts``, NotFound if nothing is there."""
        where = _paths.normalize(path)
        self.engine.call(f"delete {self.backend.where(where)}", lambda: self.backend.delete(where))

    def presign(self, path: str, method: str = "GET", expires_in: int = 300) -> PresignedUrl:
        """A URL granting one GET or PUT of ``path`` without credentials (if supported)."""
        return self.backend.presign(_paths.normalize(path), method, expires_in)

    def copy_to(self, path: str, dst: ArtifactStore, dst_path: str, progress: Progress | None = None) -> None:
        """Copy a file to another store (server-side when both are the same backend and it can)."""
        self.engine.copy(
            self.backend,
            _paths.normalize(path),
            dst.backend,
            _paths.normalize(dst_path),
            progress or self.progress,
        )

    def copy_tree_to(
        self, path: str, dst: ArtifactStore, dst_path: str = "", progress: Progress | None = None
    ) -> list[str]:
        """Copy every file below ``path`` to the same relative paths in another store."""
        return self.engine.copy_tree(
            self.backend,
            _paths.normalize(path),
            dst.backend,
            _paths.normalize(dst_path),
            progress or self.progress,
        )

    def sync(
        self,
        dst: ArtifactStore | str | os.PathLike[str],
        *,
        path: str = "",
        dst_path: str = "",
        delete: bool = False,
        dry_run: bool = False,
        compare: str = "digest",
        progress: Progress | None = None,
    ) -> SyncResult:
        """Copy the files below ``path`` that ``dst`` lacks or holds differently (:mod:`mlartifacts.sync`).

        ``dst`` is another store or a local directory (a path, never parsed as a URI:
        open a URI with ``ArtifactStore(uri)``). Only missing or different files
        move (by digest where both sides know one, else by size; ``compare="mtime"``
        also copies what is newer). ``delete`` removes destination files the source
        lacks; ``dry_run`` only plans. Returns what was copied, skipped and deleted.
        """
        from .sync import sync

        return sync(
            self,
            dst,
            src_path=path,
            dst_path=dst_path,
            delete=delete,
            dry_run=dry_run,
            compare=compare,
            progress=progress or self.progress,
        )

    def sync_from(
        self,
        src: ArtifactStore | str | os.PathLike[str],
        *,
        path: str = "",
        src_path: str = "",
        delete: bool = False,
        dry_run: bool = False,
        compare: str = "digest",
        progress: Progress | None = None,
    ) -> SyncResult:
        """The reverse of :meth:`sync`: bring ``src`` (a local directory or a store) into ``path`` here."""
        from .sync import sync

        return sync(
            src,
            self,
            src_path=src_path,
            dst_path=path,
            delete=delete,
            dry_run=dry_run,
            compare=compare,
            progress=progress or self.progress,
        )

    def verify(
        self,
        path: str = "",
        *,
        against: str | os.PathLike[str] | None = None,
        require_digest: bool = False,
        progress: Progress | None = None,
    ) -> VerifyReport:
        """Check the files below ``path`` against their recorded digests, or ``against`` a local tree.

        Files without a recorded digest are checked by checksum or size and listed as
        unverifiable by digest; with ``require_digest`` they count as problems.
        """
        from .verify import verify, verify_against

        if against is not None:
            return verify_against(self, os.fspath(against), path, require_digest=require_digest)
        return verify(self, path, require_digest=require_digest, progress=progress or self.progress)

    @property
    def root_name(self) -> str:
        """The last segment of the URI's path: the file name when the URI names a file."""
        name = posixpath.basename(urlsplit(self.uri).path.rstrip("/"))
        return _paths.normalize(name) if name else "artifact"
