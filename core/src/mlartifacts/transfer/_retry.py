"""Deadlines, cancellation and retries with exponential backoff and full jitter."""

from __future__ import annotations

import logging
import random
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, TypeVar

from ..config import Settings
from ..errors import ArtifactError, OperationTimeout
from . import _deadline

__all__ = ["Cancelled", "JobContext", "pause", "retry"]

log = logging.getLogger("mlartifacts.transfer")

T = TypeVar("T")


class Cancelled(Exception):
    """Raised inside a worker whose batch already failed; never reaches the caller."""


@dataclass(eq=False)  # identity hashing: contexts live in sets of running jobs
class JobContext:
    """What one file transfer knows about its limits: its deadline and its batch's fate."""

    what: str
    timeout: float | None
    cancel: threading.Event = field(default_factory=threading.Event)
    started: float | None = None
    parent: JobContext | None = None

    def child(self) -> JobContext:
        """A context for the parts of this job: same deadline; cancelled with it, or alone.

        Stopping the parts of one file (one failed, so the others stop) must not cancel
        the file itself, which may still fall back to another way, nor its batch.
        """
        return JobContext(self.what, self.timeout, started=self.started, parent=self)

    def cancelled(self) -> bool:
        """Whether this context or any it belongs to was cancelled."""
        ctx: JobContext | None = self
        while ctx is not None:
            if ctx.cancel.is_set():
                return True
            ctx = ctx.parent
        return False

    def start(self) -> None:
        """Start the clock (a job queued behind others is not yet late)."""
        self.started = time.monotonic()

    def remaining(self) -> float | None:
        """Seconds left before the deadline, or None without a timeout."""
        if self.timeout is None:
            return None
        started = self.started if self.started is not None else time.monotonic()
        return self.timeout - (time.monotonic() - started)

    def expired(self) -> bool:
        remaining = self.remaining()
        return remaining is not None and remaining <= 0

    def timeout_error(self) -> OperationTimeout:
        return OperationTimeout(
            f"{self.what}: timed out after {self.timeout:g} s (MLFLOW_ARTIFACT_UPLOAD_DOWNLOAD_TIMEOUT)"
        )

    def deadline(self) -> float | None:
        """The monotonic time this job must end by, or None without a timeout."""
        if self.timeout is None:
            return None
        return (self.started if self.started is not None else time.monotonic()) + self.timeout

    def run(self, fn: Callable[[], T], abandoned: Callable[[], None] | None = None) -> T:
        """``fn()``, given up at the deadline (OperationTimeout) even if it never returns.

        ``abandoned`` runs once a call given up on has ended, to clean up after it.
        """
        if self.timeout is None:
            return fn()
        return _deadline.call(fn, self.deadline(), self.timeout_error, abandoned)

    def check(self) -> None:
        """Raise if the batch was cancelled or the deadline passed."""
        if self.cancelled():
            raise Cancelled(self.what)
        if self.expired():
            raise self.timeout_error()


def retry(
    attempt: Callable[[], T],
    ctx: JobContext,
    settings: Settings,
    *,
    what: str,
    before_retry: Callable[[], None] | None = None,
    abandoned: Callable[[], None] | None = None,
) -> T:
    """Run ``attempt``; on a transient :class:`ArtifactError`, back off and run it again.

    Backoff is ``uniform(0, min(max, base * 2**n))`` ("full jitter"), and never
    sleeps past the job's deadline. ``before_retry`` undoes partial effects, such
    as progress already reported. Each attempt is given up at the deadline
    (:meth:`JobContext.run`); ``abandoned`` cleans up after one given up on.
    """
    failures = 0
    while True:
        ctx.check()
        try:
            return ctx.run(attempt, abandoned)
        except ArtifactError as exc:
            if not exc.transient or failures >= settings.max_retries:
                if failures:
                    exc.message = f"{exc.message} (gave up after {failures + 1} attempts)"
                raise
            pause(exc, failures, ctx, settings)
            failures += 1
            log.info("%s: %s; retry %d", what, exc, failures)
            if before_retry is not None:
                before_retry()


def pause(exc: ArtifactError, failures: int, ctx: JobContext, settings: Settings) -> None:
    """Sleep before retry number ``failures + 1``: ``uniform(0, min(max, base * 2**failures))``.

    Raises the job's timeout instead of sleeping past its deadline, and wakes up
    early (raising Cancelled) if its batch fails meanwhile.
    """
    delay = random.uniform(0, min(settings.retry_backoff_max, settings.retry_backoff * 2**failures))
    remaining = ctx.remaining()
    if remaining is not None and delay >= remaining:
        raise ctx.timeout_error() from exc
    deadline = time.monotonic() + delay
    while (left := deadline - time.monotonic()) > 0:
        if ctx.cancelled():
            raise Cancelled(ctx.what) from exc
        # Woken at once by this context's own cancellation, within 50 ms by a parent's.
        if ctx.cancel.wait(min(left, 0.05) if ctx.parent is not None else left):
            raise Cancelled(ctx.what) from exc
