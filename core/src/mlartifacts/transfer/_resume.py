"""Resuming interrupted transfers: which parts or ranges a re-run may skip, and when not to trust them.

An upload's journal holds its upload id and every part the storage confirmed
(number, ETag, CRC-32 of the bytes sent). A re-run of the same upload (same local
file, same destination) checks it against the storage's own list of the upload's
parts and against the file (size, modification time, each kept part's CRC), then
sends only what is missing. Anything that does not match starts a fresh upload,
aborting the old one. A ranged download's journal holds the object's identity
(size, ETag, checksum, digest, modification time) and the ranges already written
to a partial file with a fixed hidden name next to the destination.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import math
import os
import time
import zlib
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Sequence

from .. import paths as _paths
from .._backend import Backend
from .._types import FileInfo, MultipartLimits, Part
from ..config import Settings
from ..errors import (
    ArtifactError,
    IntegrityError,
    InvalidPath,
    NotFound,
    OperationTimeout,
)
from ._digest import Trailing
from ._journal import Journal, open_journal
from ._local import DEFAULT_MODE, check_received
from ._progress import Progress, Tally
from ._retry import JobContext, retry

__all__ = ["DownloadJournal", "UploadJournal", "crc", "download_resumable", "partial_name"]

log = logging.getLogger("mlartifacts.transfer")


def crc(data: bytes | memoryview) -> int:
    """The cheap checksum kept per part: CRC-32 (zlib's, about a GB/s)."""
    return zlib.crc32(data)


def _same_etag(a: str | None, b: str | None) -> bool:
    return a is not None and b is not None and a.strip('"') == b.strip('"')


class UploadJournal:
    """The resume side of one multipart upload of a local file."""

    def __init__(
        self,
        journal: Journal,
        backend: Backend,
        limits: MultipartLimits,
        local_file: str,
        st: os.stat_result,
        path: str,
        part_size: int,
        settings: Settings,
    ) -> None:
        self.journal = journal
        self.backend = backend
        self.path = path
        self.settings = settings
        self._identity = {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "part_size": part_size}
        self._about = {"source": local_file, "destination": backend.where(path)}
        retention = limits.retention if limits.retention is not None else math.inf
        self._max_age = min(settings.resume_max_age, retention)

    @classmethod
    def open(
        cls,
        backend: Backend,
        limits: MultipartLimits,
        local_file: str,
        st: os.stat_result,
        path: str,
        part_size: int,
        settings: Settings,
    ) -> UploadJournal | None:
        """The journal of this upload, or None where it cannot resume (off, busy, no ListParts)."""
        if not settings.resume or not backend.lists_parts:
            return None
        key = ["upload", os.path.realpath(local_file), backend.uri, path]
        journal = open_journal(settings, "upload", key)
        if journal is None:
            return None
        return cls(journal, backend, limits, local_file, st, path, part_size, settings)

    def resume(
        self,
        ctx: JobContext,
        part_length: Callable[[int], int],
        count: int,
        check_parts: Callable[[Sequence[int]], list[int]],
    ) -> tuple[str, dict[int, Part]] | None:
        """The upload id and parts to keep, or None to start afresh (the old upload aborted).

        ``check_parts`` returns the CRC-32 of the local file's bytes of each part given.
        """
        header = self.journal.header
        if header is None or header.get("kind") != "upload" or not isinstance(header.get("upload_id"), str):
            return None
        upload_id: str = header["upload_id"]
        where = self.backend.where(self.path)
        age = time.time() - float(header.get("created") or 0)
        if age > self._max_age:
            self.forget(upload_id, f"its journal is {age / 3600:.1f} h old, past the storage's retention")
            return None
        if any(header.get(k) != v for k, v in self._identity.items()):
            self.forget(upload_id, "the local file changed since (size or modification time)")
            return None
        try:
            listed = retry(
                lambda: self.backend.list_parts(self.path, upload_id),
                ctx,
                self.settings,
                what=f"list parts of {where}",
            )
        except NotFound:
            log.info("%s: upload %s is gone from the storage; starting afresh", where, upload_id)
            self.journal.discard()
            return None
        stored = {p.part_number: p for p in listed}
        kept: dict[int, Part] = {}
        for number, entry in sorted(self.journal.entries.items()):
            part = stored.get(number)
            if (
                part is None
                or number > count
                or not _same_etag(part.etag, entry.get("etag"))
                or (part.size is not None and part.size != part_length(number))
            ):
                continue  # not (or not that) part: send it again
            kept[number] = Part(number, str(entry["etag"]))
        numbers = sorted(kept)
        if numbers:
            sums = check_parts(numbers)
            changed = [
                n for n, s in zip(numbers, sums, strict=True) if s != self.journal.entries[n].get("crc")
            ]
            if changed:
                self.forget(upload_id, f"the local file's part {changed[0]} changed since it was sent")
                return None
        log.info("%s: resuming upload %s, %d of %d parts already stored", where, upload_id, len(kept), count)
        return upload_id, kept

    def forget(self, upload_id: str, why: str) -> None:
        """Abort the journal's upload (best effort) and drop the journal."""
        where = self.backend.where(self.path)
        log.info("%s: not resuming upload %s: %s", where, upload_id, why)
        try:
            self.backend.abort_multipart(self.path, upload_id)
        except ArtifactError as exc:
            log.warning("could not abort multipart upload %s of %s: %s", upload_id, where, exc)
        self.journal.discard()

    def started(self, upload_id: str) -> None:
        """Record a new upload before any part is sent."""
        self.journal.start({"kind": "upload", "upload_id": upload_id, **self._identity, **self._about})

    def confirmed(self, part: Part, checksum: int) -> None:
        """Record a part the storage has confirmed."""
        self.journal.record(part.part_number, etag=part.etag, crc=checksum)

    def keeps(self, failure: BaseException) -> bool:
        """Whether a failed upload stays for the next attempt (else it is aborted and forgotten).

        Kept when interrupted (Ctrl-C, a cancelled batch, a timeout) or when a part
        failed past its retries on a transient error; not when the file changed under
        it (a short read) nor when the storage refused for good (permission, not
        supported, a bad certificate...): that failure would only come back.
        """
        return _resumable(failure)

    def close(self) -> None:
        """Release the journal's lock."""
        self.journal.close()


def partial_name(local_file: str) -> str:
    """The fixed hidden name a resumable download is written to, next to its destination."""
    directory, name = os.path.split(os.path.abspath(local_file))
    partial = f"{_paths.TEMP_PREFIX}{name}.download"
    if len(partial.encode()) > 255:  # past most filesystems' limit on a name: a digest instead
        partial = f"{_paths.TEMP_PREFIX}{hashlib.sha256(name.encode()).hexdigest()[:40]}.download"
    return os.path.join(directory, partial)


class DownloadJournal:
    """The resume side of one ranged download into a partial file."""

    def __init__(
        self, journal: Journal, backend: Backend, path: str, local_file: str, info: FileInfo
    ) -> None:
        self.journal = journal
        self.backend = backend
        self.path = path
        self.partial = partial_name(local_file)
        checksum = info.checksum
        self._identity: dict[str, Any] = {
            "size": info.file_size,
            "etag": info.etag,
            "checksum": [checksum.algorithm, checksum.value] if checksum else None,
            "digest": info.digest,
            "modified": info.modified,
        }
        # With nothing but a size to go by, a changed object could not be told apart.
        self.trusted = any(self._identity[k] is not None for k in ("etag", "checksum", "digest", "modified"))

    @classmethod
    def open(
        cls, backend: Backend, path: str, local_file: str, info: FileInfo, settings: Settings
    ) -> DownloadJournal | None:
        """The journal of this download, or None where it cannot resume (off, or busy)."""
        if not settings.resume:
            return None
        key = ["download", backend.uri, path, os.path.abspath(local_file)]
        journal = open_journal(settings, "download", key)
        if journal is None:
            return None
        return cls(journal, backend, path, local_file, info)

    def ranges_done(self, chunk: int) -> set[int]:
        """Indexes of the ranges already in the partial file; starts afresh if none can be trusted."""
        header = self.journal.header
        done: set[int] = set()
        if (
            self.trusted
            and header is not None
            and header.get("kind") == "download"
            and header.get("chunk") == chunk
            and header.get("partial") == self.partial
            and all(header.get(k) == v for k, v in self._identity.items())
            and _size_of(self.partial) == self._identity["size"]
        ):
            done = set(self.journal.entries)
        if done:
            log.info(
                "%s: resuming download, %d ranges already on disk", self.backend.where(self.path), len(done)
            )
            return done
        self.journal.start(
            {
                "kind": "download",
                "chunk": chunk,
                "partial": self.partial,
                **self._identity,
                "source": self.backend.where(self.path),
            }
        )
        return set()

    def range_done(self, index: int) -> None:
        """Record a range written to the partial file."""
        self.journal.record(index)

    def discard(self) -> None:
        """Forget the download (done, or its bytes cannot be trusted)."""
        self.journal.discard()

    def close(self) -> None:
        """Release the journal's lock."""
        self.journal.close()


def _size_of(path: str) -> int | None:
    try:
        return os.path.getsize(path)
    except OSError:
        return None


def download_resumable(
    journal: DownloadJournal,
    backend: Backend,
    path: str,
    local_file: str,
    info: FileInfo,
    pool: ThreadPoolExecutor,
    settings: Settings,
    ctx: JobContext,
    progress: Progress,
) -> None:
    """A ranged download through a kept partial file, renamed into place once complete and verified.

    Ranges already in the partial file (by the journal, for the same object) are not
    fetched again. A failure keeps the partial file and the journal for the next
    attempt, except a failed verification: those bytes are dropped.
    """
    from ._chunked import download_ranges  # it imports this module

    size = info.file_size
    assert size is not None
    where = backend.where(path)
    dest = os.path.abspath(local_file)
    if os.path.isdir(dest):
        raise InvalidPath(f"cannot download to {dest!r}: it is a directory")
    os.makedirs(os.path.dirname(dest), exist_ok=True)
    partial = journal.partial

    def attempt() -> None:
        done = journal.ranges_done(settings.ranged_download_chunksize)
        if not done:
            fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            os.close(fd)
        tally = Tally(progress)
        # Hashed behind the ranges as they complete, on another thread (see Trailing).
        trailing = Trailing(partial) if settings.digests and info.digest else None
        try:
            download_ranges(
                backend, path, partial, size, pool, settings, ctx, tally, done, journal.range_done, trailing
            )
            check_received(partial, info, None, where, backend.name, settings.digests, trailing)
        except BaseException as exc:
            if trailing is not None:
                trailing.abandon()
            tally.take_back()  # counted again (from what is on disk) by the next attempt
            if not _resumable(exc):
                # Bytes that do not verify, or a download that cannot succeed as it is
                # (refused, gone): nothing is kept for a next attempt.
                journal.discard()
                _remove(partial)
            raise

    retry(attempt, ctx, settings, what=ctx.what)
    os.chmod(partial, DEFAULT_MODE)
    os.replace(partial, dest)
    journal.discard()


def _resumable(exc: BaseException) -> bool:
    """Whether a failed download keeps its partial file: interrupted, not refused or corrupt."""
    if not isinstance(exc, ArtifactError):
        return True  # interrupted (KeyboardInterrupt, a cancelled batch...)
    if isinstance(exc, IntegrityError):
        return False  # the bytes on disk are wrong somewhere
    return exc.transient or isinstance(exc, OperationTimeout)


def _remove(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
