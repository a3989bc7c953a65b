"""Progress reporting: the listener interface and the per-attempt byte counter."""

from __future__ import annotations

import threading
from typing import Protocol

from ._retry import JobContext

__all__ = ["AttemptCounter", "Forward", "NullProgress", "Progress", "Tally"]


class Progress(Protocol):
    """Receives progress of one transfer operation (a file, a tree, a stream).

    Methods are called from worker threads; implementations must be thread-safe.
    ``update`` may receive a negative count when a failed attempt is retried and
    its bytes are sent again.
    """

    def begin(self, total_bytes: int | None, total_files: int) -> None:
        """The operation starts: its size, when known, and how many files it moves."""

    def update(self, nbytes: int) -> None:
        """``nbytes`` more bytes moved."""

    def file_done(self, path: str) -> None:
        """One file finished."""

    def end(self) -> None:
        """The operation finished, successfully or not."""


class NullProgress:
    """A listener that ignores everything."""

    def begin(self, total_bytes: int | None, total_files: int) -> None:
        pass

    def update(self, nbytes: int) -> None:
        pass

    def file_done(self, path: str) -> None:
        pass

    def end(self) -> None:
        pass


class AttemptCounter:
    """The callback handed to a backend: forwards bytes, checks the deadline, rewinds on retry."""

    def __init__(self, progress: Progress, ctx: JobContext) -> None:
        self._progress = progress
        self._ctx = ctx
        self._lock = threading.Lock()
        self.sent = 0

    def __call__(self, nbytes: int) -> None:
        # Raising here is how a backend's long call learns it was cancelled or is late.
        self._ctx.check()
        with self._lock:
            self.sent += nbytes
        self._progress.update(nbytes)

    def rewind(self) -> None:
        """Take back what a failed attempt reported."""
        with self._lock:
            sent, self.sent = self.sent, 0
        if sent:
            self._progress.update(-sent)


class Forward(NullProgress):
    """Forwards only byte counts to an outer listener (for operations nested in a batch)."""

    def __init__(self, outer: Progress) -> None:
        self._outer = outer

    def update(self, nbytes: int) -> None:
        self._outer.update(nbytes)


class Tally(Forward):
    """Forwards byte counts and keeps their sum, to take them back if the attempt is dropped."""

    def __init__(self, outer: Progress) -> None:
        super().__init__(outer)
        self._lock = threading.Lock()
        self.sent = 0

    def update(self, nbytes: int) -> None:
        with self._lock:
            self.sent += nbytes
        super().update(nbytes)

    def take_back(self) -> None:
        with self._lock:
            sent, self.sent = self.sent, 0
        if sent:
            super().update(-sent)
