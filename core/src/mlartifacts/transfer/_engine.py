"""The transfer engine: every backend's uploads and downloads, with one set of rules.

Files of a tree run on a bounded pool; the parts and ranges of large files run
on a second bounded pool (so a file waiting for its parts never starves them).
Each file is retried on transient errors, limited by its own deadline, reported
to a :class:`Progress` listener, and written atomically on the local side.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import queue
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Callable, Iterable, Iterator, TypeVar

from .. import paths as _paths
from .._backend import Backend
from .._types import FileInfo
from ..config import Settings
from ..errors import ArtifactError, InvalidPath, NotFound, NotSupported, OperationTimeout, TransferError
from . import _batches, _chunked, _digest
from ._local import atomic_destination, check_received, walk_files
from ._progress import AttemptCounter, Forward, NullProgress, Progress, Tally
from ._resume import DownloadJournal, download_resumable
from ._retry import Cancelled, JobContext, pause, retry

__all__ = ["TransferEngine"]

T = TypeVar("T")

log = logging.getLogger("mlartifacts.transfer")

_POLL = 0.25
#: Files downloaded in one stream from this size on are hashed while they arrive.
_TRAIL = 8 * 1024 * 1024


@dataclass(frozen=True)
class _Job:
    what: str
    run: Callable[[JobContext], None]
    files: int = 1  # a batch may take as long as its files would, one by one


class TransferEngine:
    """Moves bytes between local files, streams and backends. Thread-safe; reuse one."""

    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings if settings is not None else Settings.from_env()
        self._lock = threading.Lock()
        self._file_pool: ThreadPoolExecutor | None = None
        self._chunk_pool: ThreadPoolExecutor | None = None

    # -- pools -------------------------------------------------------------------------

    def _files(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._file_pool is None:
                self._file_pool = ThreadPoolExecutor(
                    self.settings.max_workers, thread_name_prefix="mlartifacts-file"
                )
            return self._file_pool

    def _chunks(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._chunk_pool is None:
                self._chunk_pool = ThreadPoolExecutor(
                    self.settings.max_workers, thread_name_prefix="mlartifacts-chunk"
                )
            return self._chunk_pool

    def close(self) -> None:
        """Stop the worker threads (running transfers finish first)."""
        with self._lock:
            pools, self._file_pool, self._chunk_pool = (self._file_pool, self._chunk_pool), None, None
        for pool in pools:
            if pool is not None:
                pool.shutdown(wait=True)

    # -- batches ---------------------------------------------------------------------------

    def _run(self, jobs: Iterable[_Job], window: int | None = None) -> None:
        """Run jobs on the file pool, a bounded window at a time; fail fast on the first error.

        ``window`` caps how many are queued or running at once (default: twice the workers).

        A job that passes its deadline fails the batch at once, even if the backend
        call it is stuck in never returns; its thread stops at its next check.
        """
        results: queue.Queue[BaseException | None] = queue.Queue()
        cancel = threading.Event()
        running: set[JobContext] = set()
        running_lock = threading.Lock()
        pending = iter(jobs)
        window = window or self.settings.max_workers * 2
        in_flight = 0
        error: BaseException | None = None

        def execute(job: _Job, ctx: JobContext) -> None:
            ctx.start()
            with running_lock:
                running.add(ctx)
            try:
                ctx.check()
                job.run(ctx)
                results.put(None)
            except BaseException as exc:  # noqa: BLE001 - handed to the waiting thread
                results.put(exc)
            finally:
                with running_lock:
                    running.discard(ctx)

        def submit_more() -> int:
            submitted = 0
            while in_flight + submitted < window:
                job = next(pending, None)
                if job is None:
                    break
                timeout = self.settings.timeout
                ctx = JobContext(job.what, timeout * job.files if timeout else timeout, cancel)
                self._files().submit(execute, job, ctx)
                submitted += 1
            return submitted

        try:
            in_flight += submit_more()
            while in_flight:
                try:
                    outcome = results.get(timeout=_POLL if self.settings.timeout else None)
                except queue.Empty:
                    with running_lock:
                        late = next((c for c in running if c.expired()), None)
                    if late is not None:
                        error = late.timeout_error()
                        break  # don't wait for a thread that may be stuck in the backend
                    continue
                in_flight -= 1
                if outcome is not None and error is None:
                    # A job cancelled while nothing had failed would be a file silently
                    # left out: never let that pass as success.
                    error = (
                        outcome
                        if not isinstance(outcome, Cancelled)
                        else TransferError(f"{outcome}: cancelled with no failure to report")
                    )
                    cancel.set()
                if error is None:
                    in_flight += submit_more()
        finally:
            if error is not None or in_flight:
                cancel.set()
        if error is not None:
            raise error

    # -- single calls --------------------------------------------------------------------------

    def call(self, what: str, fn: Callable[[], T]) -> T:
        """One backend call (stat, list, delete...), given up at the timeout when one is set."""
        if self.settings.timeout is None:
            return fn()
        ctx = JobContext(what, self.settings.timeout)
        ctx.start()
        return ctx.run(fn)

    def iterate(self, what: str, items: Callable[[], Iterable[T]]) -> Iterator[T]:
        """A backend's iterator (a listing), each step given up at the deadline of the whole."""
        if self.settings.timeout is None:
            return iter(items())
        ctx = JobContext(what, self.settings.timeout)
        ctx.start()
        return _bounded_iter(ctx, items)

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

                retry(ranged, ctx, settings, what=ctx.what, abandoned=lambda: _remove(tmp))
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
                    abandoned=lambda: _remove(tmp),  # an abandoned download may write it late
                )
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
                [_Job(what, lambda ctx: self._upload_one(backend, local_file, size, path, progress, ctx))]
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

        def job(local: str, size: int, target: str) -> _Job:
            return _Job(
                f"upload {local} to {backend.where(target)}",
                lambda ctx: self._upload_one(backend, local, size, target, progress, ctx),
            )

        def batch_job(group: list[tuple[str, str, int]]) -> _Job:
            return _Job(
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
                    _Job(
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

        def job(entry: FileInfo, target: str) -> _Job:
            return _Job(
                f"download {backend.where(entry.path)} to {target}",
                lambda ctx: self._download_one(backend, entry.path, target, entry, progress, ctx),
            )

        def batch_job(group: list[tuple[FileInfo, str]]) -> _Job:
            return _Job(
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
                for chunk in _bounded_iter(ctx, functools.partial(backend.read, path, position, remaining)):
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

        def job(entry: FileInfo, target: str) -> _Job:
            def run(ctx: JobContext) -> None:
                self.copy(src, entry.path, dst, target, Forward(progress))
                progress.file_done(target)

            return _Job(f"copy {src.where(entry.path)} to {dst.where(target)}", run)

        try:
            self._run(job(entry, target) for entry, target in zip(entries, targets, strict=False))
        finally:
            progress.end()
        return targets


def _prepended(first: bytes, rest: Iterator[bytes]) -> Iterator[bytes]:
    try:
        yield first
        yield from rest
    finally:
        close = getattr(rest, "close", None)
        if close is not None:
            close()


def _bounded_iter(ctx: JobContext, items: Callable[[], Iterable[T]]) -> Iterator[T]:
    """``items()``, each step given up at the job's deadline (a hung stream never holds the caller)."""
    if ctx.timeout is None:
        yield from items()
        return
    iterator = ctx.run(lambda: iter(items()))
    given_up = False

    def close() -> None:
        close = getattr(iterator, "close", None)
        if close is not None:
            close()

    end = object()
    try:
        while True:
            try:
                item = ctx.run(lambda: next(iterator, end), abandoned=close)
            except OperationTimeout:
                given_up = True  # still running elsewhere: closed when that step ends
                raise
            if item is end:
                return
            yield item  # type: ignore[misc]
    finally:
        if not given_up:
            close()


def _remove(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


def _local_size(local_file: str) -> int:
    try:
        st = os.stat(local_file)
    except FileNotFoundError:
        raise NotFound(f"local file {local_file!r} does not exist") from None
    if os.path.isdir(local_file):
        raise InvalidPath(f"{local_file!r} is a directory; upload it as a tree")
    return st.st_size
