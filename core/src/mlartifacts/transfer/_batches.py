"""Batches of small files: which files go in them, how they are grouped, and moving one batch.

For backends whose every request costs far more than a small file's bytes (the
artifacts service), a tree's small files travel in groups, one exchange each
(``Capabilities.batch``). The engine runs these batches like files; a failed upload
batch is sent again whole, a failed download batch asks only for what is missing.
"""

from __future__ import annotations

from typing import Iterator, TypeVar

from .. import paths as _paths
from .._backend import Backend
from .._types import FileInfo
from ..config import Settings
from ..errors import IntegrityError, NotFound
from ._local import write_atomically
from ._progress import AttemptCounter, Progress
from ._retry import JobContext, retry

__all__ = ["batchable", "download", "groups", "in_flight", "upload"]

T = TypeVar("T")


def batchable(backend: Backend, settings: Settings, sizes: list[int | None]) -> set[int]:
    """Which of these files go in batches: none unless the backend batches and two or more fit."""
    limit = settings.batch_file_size
    if not limit or not backend.capabilities.batch:
        return set()
    small = {i for i, size in enumerate(sizes) if size is not None and size <= limit}
    return small if len(small) > 1 else set()


def in_flight(settings: Settings) -> int:
    """How many batches move at once."""
    return min(settings.batches_in_flight, settings.max_workers)


def groups(items: list[T], settings: Settings) -> Iterator[list[T]]:
    """``items`` in batches of at most ``batch_files``, as many as fill every slot each round."""
    if not items:
        return
    slots = in_flight(settings)
    rounds = -(-len(items) // (slots * settings.batch_files))
    per_batch = max(1, -(-len(items) // (slots * rounds)))
    for start in range(0, len(items), per_batch):
        yield items[start : start + per_batch]


def upload(
    backend: Backend,
    path: str,
    group: list[tuple[str, str, int]],
    settings: Settings,
    ctx: JobContext,
    progress: Progress,
) -> None:
    """Upload ``(local file, name below path, size)`` files in one exchange, retried whole."""
    counter = AttemptCounter(progress, ctx)

    def files() -> Iterator[tuple[str, bytes]]:
        for local, rel, _ in group:
            try:
                with open(local, "rb") as f:
                    data = f.read()
            except FileNotFoundError:
                raise NotFound(f"local file {local!r} vanished during the upload") from None
            counter(len(data))
            yield rel, data

    retry(
        lambda: backend.upload_batch(path, files()),
        ctx,
        settings,
        what=ctx.what,
        before_retry=counter.rewind,
    )
    for _, rel, _ in group:
        progress.file_done(_paths.join(path, rel))


def download(
    backend: Backend,
    path: str,
    group: list[tuple[FileInfo, str]],
    settings: Settings,
    ctx: JobContext,
    progress: Progress,
) -> None:
    """Download ``(entry, local target)`` files in one exchange; each written atomically."""
    offset = len(path) + 1 if path else 0
    remaining = {entry.path[offset:]: (entry, target) for entry, target in group}

    def attempt() -> None:  # a retry asks only for the files not yet written
        for name, data in backend.download_batch(path, list(remaining)):
            ctx.check()
            entry, target = remaining[name]
            if entry.file_size is not None and len(data) != entry.file_size:
                raise IntegrityError(
                    f"{backend.where(entry.path)}: received {len(data)} bytes, expected {entry.file_size}"
                )
            write_atomically(target, data)
            del remaining[name]
            progress.update(len(data))
            progress.file_done(entry.path)

    retry(attempt, ctx, settings, what=ctx.what)
