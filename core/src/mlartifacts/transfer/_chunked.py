"""Chunk-parallel transfers: multipart uploads (from file offsets or a stream) and ranged downloads.

Memory stays bounded by the chunks in flight, never by the object's size: parts
are read from file offsets by the worker that sends them, a stream is buffered
one part at a time behind a semaphore, and ranges are written at their offsets
as they arrive.
"""

from __future__ import annotations

import itertools
import logging
import math
import os
import threading
import time
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from typing import Any, Callable, Iterable, Iterator, Sequence, TypeVar

from .._backend import Backend
from .._types import MultipartLimits, Part
from ..config import Settings
from ..errors import ArtifactError, IntegrityError, NotSupported, OperationTimeout, TransferError
from . import _deadline, _digest
from ._progress import AttemptCounter, Progress
from ._resume import UploadJournal, crc
from ._retry import Cancelled, JobContext, retry

__all__ = ["download_ranges", "upload_file_parts", "upload_stream_parts"]

log = logging.getLogger("mlartifacts.transfer")

T = TypeVar("T")
R = TypeVar("R")

_POLL = 0.25  # seconds between deadline checks while waiting for chunks
_ABORT_TIMEOUT = 60.0


def map_chunks(
    pool: ThreadPoolExecutor,
    fn: Callable[[T], R],
    items: Sequence[T],
    ctx: JobContext,
    limit: int | None = None,
) -> list[R]:
    """Run ``fn`` over ``items`` on ``pool``; the first failure cancels the rest and is raised.

    ``limit`` caps how many run at once: items are handed to the pool in order, the next
    one only when one finished, so they also start in order (an in-order hasher fed by
    them never holds parts behind one that lost a race for a slot).
    """
    if limit is None or limit >= len(items):

        def task(item: T) -> R:
            ctx.check()
            return fn(item)

        return gather([pool.submit(task, item) for item in items], ctx)
    slots = threading.Semaphore(limit)
    futures: list[Future[R]] = []

    def limited(item: T) -> R:
        try:
            ctx.check()
            return fn(item)
        finally:
            slots.release()

    try:
        for item in items:
            while not slots.acquire(timeout=_POLL):
                ctx.check()
                _raise_failed(futures)
            _raise_failed(futures)
            futures.append(pool.submit(limited, item))
    except BaseException as exc:  # noqa: BLE001 - re-raised below, after the cleanup
        failure = exc
    else:
        return gather(futures, ctx)
    raise _stop_all(futures, failure, ctx)


def gather(futures: Sequence[Future[R]], ctx: JobContext) -> list[R]:
    """Wait for every future, checking the job's deadline; on failure cancel the rest.

    Returns or raises only once no chunk is running any more, so a caller that
    cleans up afterwards (aborting a multipart upload) never races its workers.
    """
    try:
        pending: set[Future[R]] = set(futures)
        while pending:
            done, pending = wait(pending, timeout=_POLL, return_when=FIRST_EXCEPTION)
            for future in done:
                exc = future.exception()
                if exc is not None:
                    raise exc
            ctx.check()
        return [f.result() for f in futures]
    except BaseException as exc:  # noqa: BLE001 - re-raised below, after the cleanup
        failure = exc
    # Raised outside the except block so the error keeps its own chain of causes.
    raise _stop_all(futures, failure, ctx)


def _stop_all(futures: Sequence[Future[R]], failure: BaseException, ctx: JobContext) -> BaseException:
    ctx.cancel.set()
    for future in futures:
        future.cancel()
    wait(futures)
    return _first_real_error(futures, failure)


def _first_real_error(futures: Iterable[Future[R]], raised: BaseException) -> BaseException:
    # Siblings stopped by the cancellation report Cancelled; surface the cause instead.
    if not isinstance(raised, Cancelled):
        return raised
    for future in futures:
        if not future.cancelled():
            exc = future.exception()
            if exc is not None and not isinstance(exc, Cancelled):
                return exc
    return raised


def _pread_exact(fd: int, length: int, offset: int) -> bytes:
    # A single pread returns at most ~2 GiB on Linux; parts may be larger.
    pieces = []
    while length:
        data = os.pread(fd, length, offset)
        if not data:
            break
        pieces.append(data)
        length -= len(data)
        offset += len(data)
    return pieces[0] if len(pieces) == 1 else b"".join(pieces)


def _pwrite_all(fd: int, data: bytes | memoryview, offset: int) -> None:
    view = memoryview(data)
    while view:
        written = os.pwrite(fd, view, offset)
        view = view[written:]
        offset += written


def _abort(backend: Backend, path: str, upload_id: str, settings: Settings, failure: BaseException) -> None:
    # Runs after the job failed or was cancelled, so it gets its own short deadline.
    ctx = JobContext(f"abort multipart upload {upload_id} of {backend.where(path)}", _ABORT_TIMEOUT)

    def abort() -> None:
        ctx.start()
        try:
            retry(lambda: backend.abort_multipart(path, upload_id), ctx, settings, what=ctx.what)
        except (ArtifactError, Cancelled) as exc:
            log.warning("could not abort multipart upload %s of %s: %s", upload_id, backend.where(path), exc)

    if isinstance(failure, OperationTimeout):
        # The storage is likely hung: the caller's deadline has passed, so the abort
        # (the parts are invisible until completed anyway) goes on in the background.
        threading.Thread(target=abort, name="mlartifacts-abort", daemon=True).start()
    else:
        abort()


def upload_file_parts(
    backend: Backend,
    limits: MultipartLimits,
    local_file: str,
    size: int,
    path: str,
    pool: ThreadPoolExecutor,
    settings: Settings,
    ctx: JobContext,
    progress: Progress,
) -> None:
    """Multipart-upload a local file: parts read from file offsets and sent in parallel.

    Where the backend lists an upload's parts and resuming is on, the parts the
    storage confirmed are journaled; a failed upload is kept, and the same upload
    run again sends only the parts still missing (see :mod:`._resume`).
    """
    part_size = limits.part_size_for(size, limits.part_size or settings.multipart_chunksize)
    with open(local_file, "rb") as f:
        journal = UploadJournal.open(
            backend, limits, local_file, os.fstat(f.fileno()), path, part_size, settings
        )
        try:
            _upload_file_parts(
                backend, local_file, f.fileno(), size, part_size, path, pool, settings, ctx, progress, journal
            )
        finally:
            if journal is not None:
                journal.close()


def _upload_file_parts(
    backend: Backend,
    local_file: str,
    fd: int,
    size: int,
    part_size: int,
    path: str,
    pool: ThreadPoolExecutor,
    settings: Settings,
    ctx: JobContext,
    progress: Progress,
    journal: UploadJournal | None,
) -> None:
    count = math.ceil(size / part_size)
    where = backend.where(path)

    def span(number: int) -> tuple[int, int]:
        offset = (number - 1) * part_size
        return offset, min(part_size, size - offset)

    def read_part(number: int) -> bytes:
        offset, length = span(number)
        data = _pread_exact(fd, length, offset)
        if len(data) != length:
            raise IntegrityError(f"{local_file} shrank while it was being uploaded")
        return data

    # The file's SHA-256, from the parts as they are read (None: MLARTIFACTS_DIGESTS=false).
    # Parts a resumed upload keeps are hashed as they are re-read for their CRC check.
    hasher = _digest.OrderedHasher() if settings.digests else None

    def reread(number: int) -> int:
        data = read_part(number)
        if hasher is not None:
            hasher.feed(number, data)
        return crc(data)

    kept: dict[int, Part] = {}
    found = None
    if journal is not None:
        found = journal.resume(
            ctx, lambda n: span(n)[1], count, lambda numbers: map_chunks(pool, reread, numbers, ctx)
        )
    if found is not None:
        upload_id, kept = found
        progress.update(sum(span(n)[1] for n in kept))
    else:
        upload_id = retry(
            lambda: backend.create_multipart(path, size, part_size), ctx, settings, what=f"create {where}"
        )
        if journal is not None:
            journal.started(upload_id)
    file_ctx, ctx = ctx, ctx.child()  # a failed part stops its siblings, not the file's job
    try:

        def send(number: int) -> Part:
            length = span(number)[1]
            counter = AttemptCounter(progress, ctx)

            def attempt() -> Part:
                data = read_part(number)
                if hasher is not None:
                    hasher.feed(number, data)
                # One CRC-32 pass serves the journal and the store's own check (S3's).
                checksum = crc(data) if journal is not None else None
                etag = backend.upload_part(path, upload_id, number, data, checksum)
                part = Part(number, etag)
                if journal is not None and checksum is not None:
                    journal.confirmed(part, checksum)
                counter(length)
                return part

            return retry(
                attempt,
                ctx,
                settings,
                what=f"part {number}/{count} of {where}",
                before_retry=counter.rewind,
            )

        missing = [n for n in range(1, count + 1) if n not in kept]
        # Each part in flight is held whole: their number is what MLARTIFACTS_PART_MEMORY allows.
        in_flight = max(1, min(settings.max_workers, settings.part_memory // part_size))
        sent = map_chunks(pool, send, missing, ctx, limit=in_flight)
        parts = sorted([*kept.values(), *sent], key=lambda p: p.part_number)
        digest = hasher.hexdigest(count) if hasher is not None else None
        retry(
            lambda: backend.complete_multipart(path, upload_id, parts, digest),
            file_ctx,
            settings,
            what=f"complete {where}",
        )
    except BaseException as exc:
        if journal is not None and journal.keeps(exc):
            # The parts stored stay stored: the same upload run again sends the rest.
            log.info("%s: upload %s kept for a later attempt to resume", where, upload_id)
            raise
        _abort(backend, path, upload_id, settings, exc)
        if journal is not None:
            journal.journal.discard()
        raise
    if journal is not None:
        journal.journal.discard()


def _parts_of(chunks: Iterable[bytes], part_size: int, ctx: JobContext) -> Iterator[bytes]:
    """Regroup a stream of chunks into parts of exactly ``part_size`` (the last one shorter)."""
    buffer = bytearray()
    for chunk in chunks:
        ctx.check()
        buffer += chunk
        while len(buffer) >= part_size:
            yield bytes(buffer[:part_size])
            del buffer[:part_size]
    if buffer:
        yield bytes(buffer)


def upload_stream_parts(
    backend: Backend,
    limits: MultipartLimits,
    chunks: Iterable[bytes],
    size_hint: int | None,
    path: str,
    pool: ThreadPoolExecutor,
    settings: Settings,
    ctx: JobContext,
    progress: Progress,
    digest: str | None = None,
) -> None:
    """Write a stream of unknown length, as multipart once it outgrows one part.

    A stream shorter than one part goes to the backend's ``write`` in one piece.
    At most ``stream_parts_in_flight`` parts (and never more than ``max_workers``)
    are buffered or uploading at any time, plus the one being read. The stream is
    hashed as it is read; ``digest``, the SHA-256 the caller announced, is checked
    before anything is committed (IntegrityError, nothing stored, if it differs).
    """
    part_size = limits.part_size_for(size_hint or 0, limits.part_size or settings.multipart_chunksize)
    where = backend.where(path)
    parts_iter = _parts_of(chunks, part_size, ctx)
    first = next(parts_iter, b"")
    second = next(parts_iter, None)
    if second is None:
        known = _digest.sha256_hex(first)
        if digest is not None and digest != known:
            raise _digest.mismatch(where, digest, known, "the writer announced")
        retry(lambda: backend.write(path, [first], known), ctx, settings, what=f"write {where}")
        progress.update(len(first))
        return
    if size_hint is not None and size_hint < (limits.threshold or 0):
        rest = itertools.chain([first, second], parts_iter)
        write_whole(backend, path, rest, progress, ctx, digest)
        return
    try:
        upload_id = retry(
            lambda: backend.create_multipart(path, size_hint, part_size),
            ctx,
            settings,
            what=f"create {where}",
        )
    except NotSupported:
        # Not in parts after all (a proxy's destination refused): one streamed write,
        # starting with the parts already buffered.
        log.info("%s: multipart refused; writing in one stream", where)
        write_whole(backend, path, itertools.chain([first, second], parts_iter), progress, ctx, digest)
        return
    slots = threading.BoundedSemaphore(min(settings.max_workers, settings.stream_parts_in_flight))
    futures: list[Future[Part]] = []
    hasher = _digest.OrderedHasher()  # parts are read in order, here: hashed as they come

    def send(number: int, data: bytes) -> Part:
        try:
            etag = retry(
                lambda: backend.upload_part(path, upload_id, number, data),
                ctx,
                settings,
                what=f"part {number} of {where}",
            )
            progress.update(len(data))
            return Part(number, etag)
        finally:
            slots.release()

    def all_parts() -> Iterator[bytes]:
        yield first
        yield second
        yield from parts_iter

    try:
        for number, data in enumerate(all_parts(), start=1):
            if number > limits.max_parts:
                raise TransferError(
                    f"{where}: the stream needs more than {limits.max_parts} parts of "
                    f"{part_size} bytes; raise MLARTIFACTS_MULTIPART_CHUNKSIZE"
                )
            while not slots.acquire(timeout=_POLL):
                ctx.check()
                _raise_failed(futures)
            _raise_failed(futures)
            futures.append(pool.submit(send, number, data))
            hasher.feed(number, data)  # while the part is in flight
        parts = gather(futures, ctx)
        whole = hasher.hexdigest(len(parts))
        if digest is not None and whole is not None and digest != whole:
            raise _digest.mismatch(where, digest, whole, "the writer announced")
        retry(
            lambda: backend.complete_multipart(path, upload_id, parts, whole),
            ctx,
            settings,
            what=f"complete {where}",
        )
        return
    except BaseException as exc:  # noqa: BLE001 - re-raised below, after the cleanup
        failure = exc
    error = _stop_all(futures, failure, ctx)
    _abort(backend, path, upload_id, settings, error)
    raise error


def write_whole(
    backend: Backend,
    path: str,
    chunks: Iterable[bytes],
    progress: Progress,
    ctx: JobContext,
    digest: str | None = None,
) -> None:
    """One streamed ``write`` of the caller's chunks, counted and deadline-checked.

    If the caller's own stream breaks, that is the error raised, not the backend's
    translation of it (a plugin sees only an exception escaping its iterable).
    ``digest`` (the caller's SHA-256 of the stream) goes to the backend, which records
    it and, where it sees the bytes itself, checks it before the object is committed;
    a backend that ``hashes_uploads`` hashes the stream anyway, so it is not hashed here too.
    """
    if digest is not None and not backend.capabilities.hashes_uploads:
        chunks = _digest.verified(chunks, digest, backend.where(path))
    source = _Source(chunks, progress, ctx)
    try:
        if ctx.timeout is None:
            backend.write(path, source, digest)
        else:
            _piped_write(backend, path, source, ctx, digest)
    except ArtifactError:
        if source.error is not None:
            raise source.error from None
        raise


def _piped_write(backend: Backend, path: str, source: _Source, ctx: JobContext, digest: str | None) -> None:
    """``backend.write`` on its own thread, given up at the deadline; the stream is read here."""
    deadline = ctx.deadline()
    assert deadline is not None
    pipe = _deadline.Pipe(ctx.expired)
    writer = _deadline.Worker(lambda: backend.write(path, pipe, digest), deadline, None)
    try:
        for chunk in source:
            pipe.put(chunk, writer)
            if writer.done():
                break  # it failed (it cannot have finished without the end of the stream)
        else:
            pipe.end(writer)
        if not writer.wait(deadline - time.monotonic()) and writer.abandon():
            raise ctx.timeout_error()
        writer.result()
    except BaseException:
        pipe.broken = True  # the writer's next read fails: nothing partial is stored
        raise


class _Source:
    """A caller's stream as handed to a backend: counted, deadline-checked, its own failure kept."""

    def __init__(self, chunks: Iterable[bytes], progress: Progress, ctx: JobContext) -> None:
        self._chunks = iter(chunks)
        self._progress = progress
        self._ctx = ctx
        self.error: BaseException | None = None

    def __iter__(self) -> Iterator[bytes]:
        return self

    def __next__(self) -> bytes:
        self._ctx.check()
        try:
            chunk = next(self._chunks)
        except StopIteration:
            raise
        except BaseException as exc:
            self.error = exc
            raise
        self._progress.update(len(chunk))
        return chunk


def _raise_failed(futures: Sequence[Future[Any]]) -> None:
    for future in futures:
        if future.done() and not future.cancelled() and future.exception() is not None:
            raise future.exception()  # type: ignore[misc]


def download_ranges(
    backend: Backend,
    path: str,
    local_file: str,
    size: int,
    pool: ThreadPoolExecutor,
    settings: Settings,
    ctx: JobContext,
    progress: Progress,
    done: set[int] | None = None,
    on_range: Callable[[int], None] | None = None,
    trailing: _digest.Trailing | None = None,
) -> None:
    """Fetch an object as parallel byte ranges, each written at its offset of ``local_file``.

    Ranges are ``ranged_download_chunksize`` long and numbered from 0; those in
    ``done`` are already in the file (a resumed download) and are not fetched;
    ``on_range`` is told each range written; ``trailing`` hashes the file behind the
    contiguous prefix written so far, so that only the tail is left to hash at the end.
    """
    chunk = settings.ranged_download_chunksize
    ranges = [(offset, min(chunk, size - offset)) for offset in range(0, size, chunk)]
    skipped = done or set()
    written = set(skipped)
    prefix = [0]  # ranges complete from the start, all of them written
    prefix_lock = threading.Lock()

    def advance(index: int | None) -> None:
        if trailing is None:
            return
        with prefix_lock:
            if index is not None:
                written.add(index)
            while prefix[0] in written:
                prefix[0] += 1
            reached = min(prefix[0] * chunk, size)
        trailing.reach(reached)

    def completed(index: int) -> None:
        if on_range is not None:
            on_range(index)
        advance(index)

    advance(None)  # the ranges a resumed download kept on disk count from the start
    if skipped:
        progress.update(sum(length for offset, length in ranges if offset // chunk in skipped))
    where = backend.where(path)
    ctx = ctx.child()  # a failed range stops its siblings, not the file's job (it retries whole)
    with open(local_file, "r+b") as f:
        f.truncate(size)
        fd = f.fileno()

        def fetch(span: tuple[int, int]) -> None:
            offset, length = span
            counter = AttemptCounter(progress, ctx)

            def attempt() -> None:
                position = offset
                end = offset + length
                for data in backend.read(path, offset, length):
                    if position + len(data) > end:
                        raise IntegrityError(f"{where}: range at {offset} returned too many bytes")
                    _pwrite_all(fd, data, position)
                    position += len(data)
                    counter(len(data))
                if position != end:
                    raise IntegrityError(
                        f"{where}: range {offset}-{end - 1} returned {position - offset} of {length} bytes"
                    )

            retry(attempt, ctx, settings, what=f"range {offset} of {where}", before_retry=counter.rewind)
            completed(offset // chunk)

        map_chunks(pool, fetch, [r for r in ranges if r[0] // chunk not in skipped], ctx)
