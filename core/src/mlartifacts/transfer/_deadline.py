"""Bounding blocking backend calls by an operation's deadline, whatever the SDK's own timeouts.

With a timeout set, each call runs on a daemon thread of its own and the caller
waits at most until the deadline; then it raises the operation's timeout. The
abandoned call is left to end (or fail) on its own: its result is discarded and
an ``abandoned`` callback cleans up after it (closing a stream, removing a
temporary file). Without a timeout, calls run inline: no thread hop.

Inside a bounded call, :func:`time_left` tells a plugin how long its operation
has left, so it may cap its own socket timeouts (our artifacts-service client does).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from typing import Callable, Generic, Iterator, TypeVar

__all__ = ["Pipe", "Worker", "call", "time_left"]

log = logging.getLogger("mlartifacts.transfer")

T = TypeVar("T")

_local = threading.local()
_POLL = 0.25
_IDLE = 30.0  # seconds an idle thread waits for another call before it ends


class _Threads:
    """Daemon threads that run bounded calls, reused while calls keep coming.

    Daemon threads, because one stuck in a hung socket must never keep the process
    from exiting; reused, because starting a thread per call would cost more than
    a small file's transfer.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._tasks: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()
        self._idle = 0  # threads waiting for a task that no queued task is promised to

    def run(self, task: Callable[[], None]) -> None:
        with self._lock:
            self._tasks.put(task)
            if self._idle:
                self._idle -= 1  # an idle thread takes it
                return
        threading.Thread(target=self._serve, name="mlartifacts-bounded", daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                task = self._tasks.get(timeout=_IDLE)
            except queue.Empty:
                with self._lock:
                    if not self._tasks.empty():
                        continue  # a task was queued for this thread as it timed out
                    self._idle -= 1
                    return
            task()
            with self._lock:
                self._idle += 1


_threads = _Threads()


def time_left() -> float | None:
    """Seconds left to the operation that made this backend call; None without a deadline."""
    deadline: float | None = getattr(_local, "deadline", None)
    return None if deadline is None else deadline - time.monotonic()


class Worker(Generic[T]):
    """One call running on its own daemon thread, which its caller may stop waiting for."""

    def __init__(self, fn: Callable[[], T], deadline: float, abandoned: Callable[[], None] | None) -> None:
        self._fn = fn
        self._deadline = deadline
        self._abandoned_cb = abandoned
        self._lock = threading.Lock()
        self._done = threading.Event()
        self._abandoned = False
        self._result: T | None = None
        self._error: BaseException | None = None
        _threads.run(self._work)

    def _work(self) -> None:
        _local.deadline = self._deadline
        try:
            self._result = self._fn()
        except BaseException as exc:  # noqa: BLE001 - handed to the waiting caller
            self._error = exc
        finally:
            _local.deadline = None
            with self._lock:
                self._done.set()
                late = self._abandoned
            if late:
                self._clean_up()

    def _clean_up(self) -> None:
        if self._error is not None:
            log.debug("an abandoned backend call ended with %r", self._error)
        if self._abandoned_cb is not None:
            try:
                self._abandoned_cb()
            except Exception as exc:  # noqa: BLE001 - nobody is left to tell
                log.warning("cleaning up after an abandoned backend call failed: %s", exc)

    def done(self) -> bool:
        return self._done.is_set()

    def wait(self, timeout: float) -> bool:
        return self._done.wait(max(0.0, timeout))

    def abandon(self) -> bool:
        """Stop waiting; False if the call had already ended (its result is then valid)."""
        with self._lock:
            if self._done.is_set():
                return False
            self._abandoned = True
            return True

    def result(self) -> T:
        if self._error is not None:
            raise self._error
        return self._result  # type: ignore[return-value]


def call(
    fn: Callable[[], T],
    deadline: float | None,
    timeout_error: Callable[[], BaseException],
    abandoned: Callable[[], None] | None = None,
) -> T:
    """``fn()``, but raise ``timeout_error()`` at ``deadline`` (monotonic) if it has not returned."""
    if deadline is None:
        return fn()
    left = deadline - time.monotonic()
    if left <= 0:
        raise timeout_error()
    worker = Worker(fn, deadline, abandoned)
    if not worker.wait(left) and worker.abandon():
        raise timeout_error()
    return worker.result()


class Pipe:
    """A caller's chunks handed to a backend call on another thread, a couple at a time.

    The caller keeps consuming its own stream in its own thread (a server's request
    body can only be read there); if the caller gives up, the backend's next read
    fails, so an abandoned write never completes.
    """

    _END = object()

    def __init__(self, expired: Callable[[], bool]) -> None:
        self._queue: queue.Queue[object] = queue.Queue(maxsize=2)
        self._expired = expired
        self.broken = False

    def put(self, item: bytes, writer: Worker[None]) -> None:
        """Queue one chunk; returns early (dropping it) if the writer ended or time ran out."""
        while not self.broken and not writer.done() and not self._expired():
            try:
                self._queue.put(item, timeout=_POLL)
                return
            except queue.Full:
                continue

    def end(self, writer: Worker[None]) -> None:
        self.put(self._END, writer)  # type: ignore[arg-type]

    def __iter__(self) -> Iterator[bytes]:
        while True:
            if self.broken:
                raise ConnectionAbortedError("the write was abandoned by its caller")
            try:
                item = self._queue.get(timeout=_POLL)
            except queue.Empty:
                continue
            if item is self._END:
                return
            yield item  # type: ignore[misc]
