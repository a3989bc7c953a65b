"""The engine's worker pools and job runner, shared by its upload and download paths.

Files of a tree run on a bounded pool; the parts and ranges of large files run
on a second bounded pool (so a file waiting for its parts never starves them).
Each job is limited by its own deadline; the first failure fails the batch.
"""

from __future__ import annotations

import contextlib
import os
import queue
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Callable, Iterable, Iterator, TypeVar

from ..config import Settings
from ..errors import OperationTimeout, TransferError
from ._retry import Cancelled, JobContext

__all__ = ["EngineBase", "Job", "bounded_iter", "remove"]

T = TypeVar("T")

_POLL = 0.25


@dataclass(frozen=True)
class Job:
    """One unit of work for the file pool: a file, or a batch of small files."""

    what: str
    run: Callable[[JobContext], None]
    files: int = 1  # a batch may take as long as its files would, one by one


class EngineBase:
    """Settings, the two bounded pools and the job runner of a :class:`TransferEngine`."""

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

    def _run(self, jobs: Iterable[Job], window: int | None = None) -> None:
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

        def execute(job: Job, ctx: JobContext) -> None:
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
        return bounded_iter(ctx, items)


def bounded_iter(ctx: JobContext, items: Callable[[], Iterable[T]]) -> Iterator[T]:
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


def remove(path: str) -> None:
    """Delete ``path`` if it exists."""
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
