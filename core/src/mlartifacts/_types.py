"""Value types shared by the core API and the plugin contract."""

from __future__ import annotations

import math
from dataclasses import KW_ONLY, dataclass, field
from typing import Mapping

__all__ = [
    "Capabilities",
    "Checksum",
    "FileInfo",
    "MultipartLimits",
    "Part",
    "PendingUpload",
    "PresignedUrl",
]

KiB = 1024
MiB = 1024 * KiB
GiB = 1024 * MiB


@dataclass(frozen=True)
class Checksum:
    """A digest a backend stores with an object, used to verify downloads.

    ``algorithm`` is a :mod:`hashlib` name (``"md5"``, ``"sha256"``...) or
    ``"crc32c"`` (Google Cloud Storage's; verified with the google-crc32c package);
    ``value`` is the lowercase hex digest (CRC32C: 8 hex digits, big-endian).
    """

    algorithm: str
    value: str


@dataclass(frozen=True)
class FileInfo:
    """One entry of a listing: MLflow's ``FileInfo(path, is_dir, file_size)``.

    ``path`` is relative to the store root, POSIX-style. ``file_size`` is None
    for directories. The keyword-only fields are filled where a backend knows them.
    """

    path: str
    is_dir: bool
    file_size: int | None = None
    _: KW_ONLY
    checksum: Checksum | None = field(default=None, compare=False)
    etag: str | None = field(default=None, compare=False)
    modified: float | None = field(default=None, compare=False)  # POSIX timestamp
    #: Lowercase hex SHA-256 of the whole content, where it was recorded with the object
    #: (mlartifacts records it on upload; None when unknown). Comparable across backends.
    digest: str | None = field(default=None, compare=False)
    #: A SHA-256 recorded for this path that no longer describes it (the file's size or time
    #: changed since: it was changed outside mlartifacts); never used to check the bytes.
    stale_digest: str | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if self.is_dir and self.file_size is not None:
            object.__setattr__(self, "file_size", None)


@dataclass(frozen=True)
class MultipartLimits:
    """What a backend's multipart upload accepts (S3: 5 MiB-5 GiB parts, 10,000 parts).

    Every part but the last must be at least ``min_part_size``. ``threshold`` and
    ``part_size``, when set, replace the engine's settings for this backend.
    """

    min_part_size: int
    max_part_size: int
    max_parts: int
    #: The backend's own multipart threshold (overrides MLARTIFACTS_MULTIPART_THRESHOLD).
    threshold: int | None = None
    #: The backend's preferred part size (overrides MLARTIFACTS_MULTIPART_CHUNKSIZE).
    part_size: int | None = None
    #: Seconds the storage keeps an incomplete upload's parts (Azure: 7 days), None if
    #: until aborted; a resume journal older than this starts over.
    retention: float | None = None

    def part_size_for(self, size: int, preferred: int) -> int:
        """The part size to use for an object of ``size`` bytes.

        Starts from ``preferred``, clamps it into the limits and grows it until the
        object fits in ``max_parts`` parts.
        """
        part = min(max(preferred, self.min_part_size), self.max_part_size)
        if size > part * self.max_parts:
            # Round up to whole MiB: part boundaries stay aligned with page-cache
            # and filesystem blocks, which readers of file offsets like.
            part = math.ceil(size / self.max_parts)
            rounded = math.ceil(part / MiB) * MiB
            if part >= MiB and rounded <= self.max_part_size:
                part = rounded
            if part > self.max_part_size:
                raise ValueError(
                    f"{size} bytes do not fit in {self.max_parts} parts of at most {self.max_part_size} bytes"
                )
        return part


@dataclass(frozen=True)
class Capabilities:
    """The optional features a backend offers (multipart is reported separately).

    Attributes:
        ranged_read: ``read`` honours ``offset``/``length`` natively and cheaply, so
            large downloads can fetch ranges in parallel.
        presign: ``presign`` returns URLs a client can use without credentials.
        server_side_copy: ``copy`` copies inside the storage without moving bytes
            through this process.
        list_multipart_uploads: incomplete multipart uploads can be listed (for gc).
        list_parts: ``list_parts`` lists an incomplete upload's parts, so an interrupted
            multipart upload resumes with the parts still missing.
        single_stream: one stream moves bytes fastest here (a local filesystem, where
            one kernel-side copy beats parallel ranges), so downloads are not split.
        batch: ``upload_batch`` / ``download_batch`` move many small files in one
            exchange (the artifacts service: one request per batch, not one per file),
            so the engine groups a tree's small files.
        hashes_uploads: ``upload`` and ``write`` compute the SHA-256 themselves, as they
            copy the bytes, and record it (the path-store toolkit does); ``write`` refuses
            an announced ``digest`` that differs before anything is committed. The engine
            then does not hash the bytes a second time.
    """

    ranged_read: bool = False
    presign: bool = False
    server_side_copy: bool = False
    list_multipart_uploads: bool = False
    list_parts: bool = False
    single_stream: bool = False
    batch: bool = False
    hashes_uploads: bool = False


@dataclass(frozen=True)
class Part:
    """One uploaded part of a multipart upload."""

    part_number: int
    etag: str
    url: str | None = None  # the presigned URL it was sent to, when proxied
    size: int | None = None  # bytes it holds, where the storage says (``list_parts``)


@dataclass(frozen=True)
class PresignedUrl:
    """A URL that grants one operation without credentials, and headers to send with it."""

    url: str
    headers: Mapping[str, str] = field(default_factory=dict)
    expires_in: int | None = None


@dataclass(frozen=True)
class PendingUpload:
    """An incomplete multipart upload still held by the storage."""

    path: str
    upload_id: str
    initiated: float | None = None  # POSIX timestamp
    size: int | None = None  # bytes it holds, where the storage says (gc reports what it frees)
