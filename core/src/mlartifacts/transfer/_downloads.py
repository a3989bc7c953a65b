"""The engine's download path: single files, trees, chosen entries and resuming streams.

A file is written atomically on the local side and its digest checked before it
is renamed into place; a large file comes in ranges (through a journal, so that a
re-run resumes) and is hashed while it arrives, never re-read.
"""

from __future__ import annotations

import functools
import logging
import os
from typing import Iterator

from .. import paths as _paths
from .._backend import Backend
from .._types import FileInfo
from ..errors import ArtifactError, InvalidPath
from . import _batches, _chunked, _digest
from ._local import atomic_destination, check_received
from ._pool import EngineBase, Job, bounded_iter, remove
from ._progress import AttemptCounter, NullProgress, Progress
from ._resume import DownloadJournal, download_resumable
from ._retry import JobContext, pause, retry

__all__ = ["Downloads"]

log = logging.getLogger("mlartifacts.transfer")

#: Files downloaded in one stream from this size on are hashed while they arrive.
_TRAIL = 8 * 1024 * 1024


class Downloads(EngineBase):
    """The download half of :class:`TransferEngine` (its public methods are documented there)."""

    # -- single files ------------------------------------------------------------------------

    def _download_one(
        self,
        backend: Backend,
        path: str,
        local_file: str,
        expected: FileInfo | None,
        progress: Progress,
        ctx: JobContext,
    ) -> None:
        where = backend.where(path)
        info = expected
        if info is None or (info.file_size is None and not info.is_dir):
            info = retry(lambda: backend.stat(path), ctx, self.settings, what=f"stat {where}")
        if info.is_dir:
            raise InvalidPath(f"{where} is a directory; download it as a tree")
        size = info.file_size
        settings = self.settings
        in_ranges = (
            size is not None
            and backend.capabilities.ranged_read
            and not backend.capabilities.single_stream
            and size >= settings.ranged_download_threshold
            and size > settings.ranged_download_chunksize
        )
        if in_ranges and info.digest is None and expected is not None and settings.digests:
            info = retry(lambda: backend.stat(path), ctx, settings, what=f"stat {where}")  # S3's listings
        journal = DownloadJournal.open(backend, path, local_file, info, settings) if in_ranges else None
        if journal is not None:  # through a kept partial file, so that a re-run resumes
            try:
                download_resumable(
                    journal, backend, path, local_file, info, self._chunks(), settings, ctx, progress
                )
            finally:
                journal.close()
            progress.file_done(path)
            return
        with atomic_destination(local_file) as tmp:
            if in_ranges:
                assert size is not None
                checked = info

                def ranged() -> None:
                    # Hashed behind the ranges as they complete, on another thread (see Trailing).
                    trailing = _digest.Trailing(tmp) if settings.digests and checked.digest else None
                    try:
                        _chunked.download_ranges(
                            backend,
                            path,
                            tmp,
                            size,
                            self._chunks(),
                            settings,
                            ctx,
                            progress,
                            trailing=trailing,
                        )
                    except BaseException:
                        if trailing is not None:
                            trailing.abandon()
                        raise
                    check_received(tmp, checked, None, where, backend.name, settings.digests, trailing)

                retry(ranged, ctx, settings, what=ctx.what, abandoned=lambda: remove(tmp))
            else:
                counter = AttemptCounter(progress, ctx)
                checked = info

                def attempt() -> None:
                    # A large file is hashed while it arrives, on another thread (see Trailing).
                    trailing = _digest.Trailing(tmp) if settings.digests and (size or 0) >= _TRAIL else None
                    try:
                        sent = backend.download(path, tmp, _digest.reporting(counter, trailing))
                    except BaseException:
                        if trailing is not None:
                            trailing.abandon()
                        raise
                    check_received(tmp, checked, sent, where, backend.name, settings.digests, trailing)
                    received = os.path.getsize(tmp)
                    if counter.sent < received:
                        counter(received - counter.sent)

                retry(
                    attempt,
                    ctx,
                    settings,
                    what=ctx.what,
                    before_retry=counter.rewind,
                    abandoned=lambda: remove(tmp),  # an abandoned download may write it late
                )
        progress.file_done(path)

    # -- public operations ---------------------------------------------------------------------

    def download_file(
        self,
        backend: Backend,
        path: str,
        local_file: str,
        progress: Progress | None = None,
        expected: FileInfo | None = None,
    ) -> str:
        """Download the object at ``path`` to ``local_file`` (atomically, verified)."""
        progress = progress or NullProgress()
        progress.begin(expected.file_size if expected else None, 1)
        try:
            what = f"download {backend.where(path)} to {local_file}"
            self._run(
                [
                    Job(
                        what,
                        lambda ctx: self._download_one(backend, path, local_file, expected, progress, ctx),
                    )
                ]
            )
        finally:
            progress.end()
        return local_file

    def download_tree(
        self, backend: Backend, path: str, local_dir: str, progress: Progress | None = None
    ) -> list[str]:
        """Download every file below ``path`` into ``local_dir``, in parallel. Returns local paths.

        Where the backend moves batches, small files come in groups, one exchange each.
        """
        entries = self.call(
            f"list {backend.where(path)}",
            lambda: [e for e in backend.list(path, recursive=True) if not e.is_dir],
        )
        return self.download_entries(backend, path, entries, local_dir, progress)

    def download_entries(
        self,
        backend: Backend,
        path: str,
        entries: list[FileInfo],
        local_dir: str,
        progress: Progress | None = None,
    ) -> list[str]:
        """Download these files (listed below ``path``) into ``local_dir``, in parallel (``sync``)."""
        progress = progress or NullProgress()
        progress.begin(sum(e.file_size or 0 for e in entries), len(entries))
        offset = len(path) + 1 if path else 0
        targets = [_paths.local_join(local_dir, e.path[offset:]) for e in entries]
        for directory in sorted({os.path.dirname(t) for t in targets} | {local_dir}):
            os.makedirs(directory, exist_ok=True)  # once per directory, not once per file
        small = _batches.batchable(backend, self.settings, [e.file_size for e in entries])

        def job(entry: FileInfo, target: str) -> Job:
            return Job(
                f"download {backend.where(entry.path)} to {target}",
                lambda ctx: self._download_one(backend, entry.path, target, entry, progress, ctx),
            )

        def batch_job(group: list[tuple[FileInfo, str]]) -> Job:
            return Job(
                f"download {len(group)} files from {backend.where(path)} to {local_dir}",
                lambda ctx: _batches.download(backend, path, group, self.settings, ctx, progress),
                files=len(group),
            )

        pairs = list(zip(entries, targets, strict=False))
        try:
            self._run(
                (batch_job(group) for group in _batches.groups([pairs[i] for i in small], self.settings)),
                window=_batches.in_flight(self.settings),
            )
            self._run(job(entry, target) for i, (entry, target) in enumerate(pairs) if i not in small)
        finally:
            progress.end()
        return targets

    # -- streams -------------------------------------------------------------------------------

    def read_stream(
        self, backend: Backend, path: str, offset: int = 0, length: int | None = None
    ) -> Iterator[bytes]:
        """Stream an object (or a byte range), resuming where it broke off on transient errors.

        The first chunk is fetched before this returns, so a missing object or a refused
        read raises here, at the call, not at the caller's first ``next()``.
        """
        if offset < 0 or (length is not None and length < 0):
            raise ValueError("offset and length must not be negative")
        stream = self._resuming_read(backend, path, offset, length)
        try:
            first = next(stream)
        except StopIteration:
            return iter(())
        return _prepended(first, stream)

    def _resuming_read(self, backend: Backend, path: str, offset: int, length: int | None) -> Iterator[bytes]:
        ctx = JobContext(f"read {backend.where(path)}", self.settings.timeout)
        ctx.start()
        position, remaining, failures = offset, length, 0
        while True:
            try:
                for chunk in bounded_iter(ctx, functools.partial(backend.read, path, position, remaining)):
                    ctx.check()
                    position += len(chunk)
                    if remaining is not None:
                        remaining -= len(chunk)
                    yield chunk
                return
            except ArtifactError as exc:
                if not exc.transient or failures >= self.settings.max_retries:
                    raise
                pause(exc, failures, ctx, self.settings)
                failures += 1
                log.info("%s: %s; resuming at byte %d", ctx.what, exc, position)


def _prepended(first: bytes, rest: Iterator[bytes]) -> Iterator[bytes]:
    try:
        yield first
        yield from rest
    finally:
        close = getattr(rest, "close", None)
        if close is not None:
            close()
