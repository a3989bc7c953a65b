"""The plugin contract: every hook a storage backend can implement.

A call for a URI reaches only the plugin that claimed its scheme. ``root`` is the
object that plugin's ``resolve_uri`` returned; ``path`` is a clean relative POSIX
path below it ('' is the root itself), already checked by the core. Hooks raise
:mod:`mlartifacts.errors` types. Required: ``schemes``, ``resolve_uri``, ``stat``,
``list``, ``upload``, ``write``, ``download``, ``read``, ``delete``; the others
are optional and gated by ``capabilities`` / ``supports_multipart``.
See docs/plugin-authors.md.
"""

from __future__ import annotations

from typing import Any, Callable, Iterable, Sequence

import pluggy

from ._types import Capabilities, FileInfo, MultipartLimits, Part, PendingUpload, PresignedUrl
from .config import Settings

hookspec = pluggy.HookspecMarker("mlartifacts")
hookimpl = pluggy.HookimplMarker("mlartifacts")

Root = Any  # whatever the plugin's resolve_uri returned
Progress = Callable[[int], None]  # called with byte increments; may raise to cancel


@hookspec(firstresult=True)
def schemes() -> Sequence[str]:
    """URI schemes this plugin claims ('' claims plain filesystem paths)."""


@hookspec(firstresult=True)
def resolve_uri(uri: str, settings: Settings) -> Root:
    """Parse a URI into this plugin's root handle (sized by the engine's settings), or raise InvalidUri."""


@hookspec(firstresult=True)
def capabilities(root: Root | None) -> Capabilities:
    """Optional features at root (None: in general): ranged reads, presign, copy."""


@hookspec(firstresult=True)
def supports_multipart(root: Root | None) -> MultipartLimits | None:
    """Multipart upload limits at root (None: in general), or None without multipart."""


@hookspec(firstresult=True)
def stat(root: Root, path: str) -> FileInfo:
    """The file or directory at path; raise NotFound when nothing is there."""


@hookspec(firstresult=True)
def list(root: Root, path: str, recursive: bool) -> Iterable[FileInfo]:
    """Direct children of directory path, or every file below it if recursive; empty if none."""


@hookspec(firstresult=True)
def upload(root: Root, path: str, local_file: str, progress: Progress, digest: str | None) -> None:
    """Write a local file to path atomically, calling progress(n); record digest (its SHA-256) with it."""


@hookspec(firstresult=True)
def write(root: Root, path: str, chunks: Iterable[bytes], digest: str | None) -> None:
    """Write an object of unknown length from byte chunks, atomically (digest: its SHA-256, if known)."""


@hookspec(firstresult=True)
def download(root: Root, path: str, local_file: str, progress: Progress) -> str | None:
    """Write the object at path into local_file (a temporary); return the SHA-256 sent with it, if any."""


@hookspec(firstresult=True)
def read(root: Root, path: str, offset: int, length: int | None) -> Iterable[bytes]:
    """Stream the object's bytes from offset (length None: to the end) as chunks."""


@hookspec(firstresult=True)
def delete(root: Root, path: str) -> None:
    """Delete the file or the whole tree at path; raise NotFound when nothing is there."""


@hookspec(firstresult=True)
def upload_batch(root: Root, path: str, files: Iterable[tuple[str, bytes]]) -> None:
    """Write small files, given as (name below path, bytes), in one exchange; each atomically."""


@hookspec(firstresult=True)
def download_batch(root: Root, path: str, names: Sequence[str]) -> Iterable[tuple[str, bytes]]:
    """The bytes of several small files (names below path) in one exchange, as (name, bytes)."""


@hookspec(firstresult=True)
def create_multipart(root: Root, path: str, size: int | None, part_size: int) -> str:
    """Start a multipart upload to path (size None: unknown) and return its upload id."""


@hookspec(firstresult=True)
def upload_part(
    root: Root, path: str, upload_id: str, part_number: int, data: bytes, crc32: int | None
) -> str:
    """Upload one part (from 1) with the store's checksum (``crc32``: its CRC-32 if known); its ETag."""


@hookspec(firstresult=True)
def complete_multipart(
    root: Root, path: str, upload_id: str, parts: Sequence[Part], digest: str | None
) -> None:
    """Assemble the parts, in part-number order, into the object at path; record digest with it."""


@hookspec(firstresult=True)
def abort_multipart(root: Root, path: str, upload_id: str) -> None:
    """Abandon a multipart upload and free the storage its parts hold."""


@hookspec(firstresult=True)
def list_parts(root: Root, path: str, upload_id: str) -> Sequence[Part]:
    """The parts an incomplete upload holds (ETags as ``upload_part`` returned them); NotFound if gone."""


@hookspec(firstresult=True)
def list_multipart_uploads(root: Root, path: str) -> Iterable[PendingUpload]:
    """Incomplete multipart uploads below path, for garbage collection."""


@hookspec(firstresult=True)
def presign(
    root: Root,
    path: str,
    method: str,
    expires_in: int,
    upload_id: str | None,
    part_number: int | None,
) -> PresignedUrl:
    """A URL granting one GET or PUT of path (or of one multipart part) for expires_in s."""


@hookspec(firstresult=True)
def copy(root: Root, path: str, dst_root: Root, dst_path: str) -> None:
    """Copy the object at path to dst_path of dst_root inside the storage (server-side)."""
