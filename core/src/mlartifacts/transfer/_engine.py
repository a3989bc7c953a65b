"""The transfer engine: every backend's uploads and downloads, with one set of rules.

Files of a tree run on a bounded pool; the parts and ranges of large files run
on a second bounded pool (so a file waiting for its parts never starves them).
Each file is retried on transient errors, limited by its own deadline, reported
to a :class:`Progress` listener, and written atomically on the local side.
"""

from __future__ import annotations

import logging
import os
from typing import Iterable

from .. import paths as _paths
from .._backend import Backend
from .._types import FileInfo
from ..errors import InvalidPath, NotFound, NotSupported, TransferError
from . import _batches, _chunked, _digest
from ._downloads import Downloads
from ._local import walk_files
from ._pool import Job
from ._progress import AttemptCounter, Forward, NullProgress, Progress, Tally
from ._retry import Cancelled, JobContext, retry

__all__ = ["TransferEngine"]

log = logging.getLogger("mlartifacts.transfer")


class TransferEngine(Downloads):
    """Moves bytes between local files, streams and backends. Thread-safe; reuse one.

    The pools and job runner live in ``_pool``, the download path in ``_downloads``.
    """

    # -- single files ------------------------------------------------------------------------

    def _upload_one(
        self, backend: Backend, local_file: str, size: int, path: str, progress: Progress, ctx: JobContext
    ) -> None:
        limits = backend.multipart_limits
        threshold = limits.threshold if limits and limits.threshold else self.settings.multipart_threshold
        if limits is not None and size >= threshold:
            part_size = limits.part_size_for(size, limits.part_size or self.settings.multipart_chunksize)
            if size > part_size:
                parts_progress = Tally(progress)
                try:
                    _chunked.upload_file_parts(
                        backend,
                        limits,
                        local_file,
                        size,
                        path,
                        self._chunks(),
                        self.settings,
                        ctx,
                        parts_progress,
                    )
                    progress.file_done(path)
                    return
                except NotSupported:  # refused (the upload was aborted): send it whole instead
                    parts_progress.take_back()  # the parts already sent count for nothing
                    log.info("%s: multipart refused; uploading in one request", backend.where(path))
        counter = AttemptCounter(progress, ctx)

        # Sent whole (a small file, or a store without parts): hashed first, from the page cache.
        first = self.settings.digests and not backend.capabilities.hashes_uploads
        digest = _digest.file_sha256(local_file) if first else None

        def attempt() -> None:
            backend.upload(path, local_file, counter, digest)
            if counter.sent < size:  # the backend reported less (or nothing): settle the count
                counter(size - counter.sent)

        retry(attempt, ctx, self.settings, what=ctx.what, before_retry=counter.rewind)
        progress.file_done(path)

    # -- public operations ---------------------------------------------------------------------

    def upload_file(
        self, backend: Backend, local_file: str, path: str, progress: Progress | None = None
    ) -> None:
        """Upload one local file to ``path`` (multipart when large and supported)."""
        size = _local_size(local_file)
        progress = progress or NullProgress()
        progress.begin(size, 1)
        try:
            what = f"upload {local_file} to {backend.where(path)}"
            self._run(
                [Job(what, lambda ctx: self._upload_one(backend, local_file, size, path, progress, ctx))]
            )
        finally:
            progress.end()

    def upload_tree(
        self, backend: Backend, local_dir: str, path: str, progress: Progress | None = None
    ) -> list[str]:
        """Upload every file below ``local_dir`` under ``path``, in parallel. Returns the paths.

        Where the backend moves batches, small files go in groups, one exchange each.
        """
        return self.upload_files(backend, walk_files(local_dir), path, progress)

    def upload_files(
        self,
        backend: Backend,
        files: list[tuple[str, str, int]],
        path: str,
        progress: Progress | None = None,
    ) -> list[str]:
        """Upload ``(local file, name below path, size)`` files in parallel (a chosen set: ``sync``)."""
        progress = progress or NullProgress()
        progress.begin(sum(size for _, _, size in files), len(files))
        targets = [_paths.join(path, rel) for _, rel, _ in files]
        small = _batches.batchable(backend, self.settings, [size for _, _, size in files])

        def job(local: str, size: int, target: str) -> Job:
            return Job(
                f"upload {local} to {backend.where(target)}",
                lambda ctx: self._upload_one(backend, local, size, target, progress, ctx),
            )

        def batch_job(group: list[tuple[str, str, int]]) -> Job:
            return Job(
                f"upload {len(group)} files to {backend.where(path)}",
                lambda ctx: _batches.upload(backend, path, group, self.settings, ctx, progress),
                files=len(group),
            )

        try:
            self._run(
                (batch_job(group) for group in _batches.groups([files[i] for i in small], self.settings)),
                window=_batches.in_flight(self.settings),
            )
            self._run(
                job(local, size, target)
                for i, ((local, _, size), target) in enumerate(zip(files, targets, strict=False))
                if i not in small
            )
        finally:
            progress.end()
        return targets

    # -- streams -------------------------------------------------------------------------------

    def write_stream(
        self,
        backend: Backend,
        path: str,
        chunks: Iterable[bytes],
        size_hint: int | None = None,
        progress: Progress | None = None,
        digest: str | None = None,
    ) -> None:
        """Write an object from a stream of unknown length, multipart where the backend has it.

        Runs in the calling thread (which keeps consuming ``chunks``); parts go out
        in parallel. Nothing is visible at ``path`` unless the whole stream arrived
        (and, given ``digest``, its SHA-256 matched where the bytes pass the engine).
        """
        progress = progress or NullProgress()
        progress.begin(size_hint, 1)
        ctx = JobContext(f"write {backend.where(path)}", self.settings.timeout)
        ctx.start()
        try:
            limits = backend.multipart_limits
            if limits is not None:
                _chunked.upload_stream_parts(
                    backend,
                    limits,
                    chunks,
                    size_hint,
                    path,
                    self._chunks(),
                    self.settings,
                    ctx,
                    progress,
                    digest,
                )
            else:
                _chunked.write_whole(backend, path, chunks, progress, ctx, digest)
            progress.file_done(path)
        except Cancelled as exc:  # the stream's own parts failed; their error was raised instead
            raise TransferError(f"{ctx.what}: cancelled") from exc
        finally:
            progress.end()

    def copy(
        self,
        src: Backend,
        src_path: str,
        dst: Backend,
        dst_path: str,
        progress: Progress | None = None,
    ) -> None:
        """Copy one object between two locations: server-side when both allow it, else streamed."""
        progress = progress or NullProgress()
        if src.handle is dst.handle and src.capabilities.server_side_copy:
            ctx = JobContext(f"copy {src.where(src_path)} to {dst.where(dst_path)}", self.settings.timeout)
            ctx.start()
            info = ctx.run(lambda: src.stat(src_path))
            progress.begin(info.file_size, 1)
            try:
                retry(lambda: src.copy(src_path, dst, dst_path), ctx, self.settings, what=ctx.what)
                progress.update(info.file_size or 0)
                progress.file_done(dst_path)
                return
            except NotSupported as exc:
                # Not between these two roots (say, two S3 endpoints or credentials): stream it.
                log.info("%s: %s; streaming instead", ctx.what, exc)
            finally:
                progress.end()
        info = self.call(f"stat {src.where(src_path)}", lambda: src.stat(src_path))
        if info.is_dir:
            raise InvalidPath(f"{src.where(src_path)} is a directory; copy it as a tree")
        stream = self.read_stream(src, src_path)
        self.write_stream(dst, dst_path, stream, info.file_size, progress, info.digest)

    def copy_tree(
        self,
        src: Backend,
        src_path: str,
        dst: Backend,
        dst_path: str,
        progress: Progress | None = None,
    ) -> list[str]:
        """Copy every object below ``src_path`` to the same relative paths below ``dst_path``."""
        entries = self.call(
            f"list {src.where(src_path)}",
            lambda: [e for e in src.list(src_path, recursive=True) if not e.is_dir],
        )
        return self.copy_entries(src, src_path, entries, dst, dst_path, progress)

    def copy_entries(
        self,
        src: Backend,
        src_path: str,
        entries: list[FileInfo],
        dst: Backend,
        dst_path: str,
        progress: Progress | None = None,
    ) -> list[str]:
        """Copy these objects (listed below ``src_path``) to the same relative paths below ``dst_path``."""
        progress = progress or NullProgress()
        progress.begin(sum(e.file_size or 0 for e in entries), len(entries))
        offset = len(src_path) + 1 if src_path else 0
        targets = [_paths.join(dst_path, e.path[offset:]) for e in entries]

        def job(entry: FileInfo, target: str) -> Job:
            def run(ctx: JobContext) -> None:
                self.copy(src, entry.path, dst, target, Forward(progress))
                progress.file_done(target)

            return Job(f"copy {src.where(entry.path)} to {dst.where(target)}", run)

        try:
            self._run(job(entry, target) for entry, target in zip(entries, targets, strict=False))
        finally:
            progress.end()
        return targets


def _local_size(local_file: str) -> int:
    try:
        st = os.stat(local_file)
    except FileNotFoundError:
        raise NotFound(f"local file {local_file!r} does not exist") from None
    if os.path.isdir(local_file):
        raise InvalidPath(f"{local_file!r} is a directory; upload it as a tree")
    return st.st_size
