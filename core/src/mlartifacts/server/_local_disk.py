"""Uploads into a directory of this machine: the replaced file's blocks, and the digest check.

- An upload over an existing file ends with a rename over it; when the rename drops
  the old file's last link, the kernel frees its blocks right there, in the request
  (0.2-0.6 s for 1 GiB measured here). Holding the old file open across the rename
  moves that work to the last close, which a background thread does once the
  request has its answer.
- The path-store toolkit hashes every stream it writes (and records the digest);
  given the client's announced SHA-256, the engine hashed the stream a second time,
  on the same thread, to check it. Here that check runs on a thread of its own,
  beside the writing one, and still fails the write before anything is renamed.
"""

from __future__ import annotations

import hashlib
import os
import queue
import threading
from typing import Iterable, Iterator

from ..errors import IntegrityError
from ..pathstore import PathRoot
from ..store import ArtifactStore

__all__ = ["DigestMismatch", "hold_replaced", "is_local", "release", "verify_beside"]

_closing: queue.SimpleQueue[int] = queue.SimpleQueue()
_closer: threading.Thread | None = None
_lock = threading.Lock()


def is_local(store: ArtifactStore) -> bool:
    """Whether the destination is a directory of this machine, written through the path-store toolkit."""
    return _local_root(store) is not None


def _local_root(store: ArtifactStore) -> PathRoot | None:
    """The destination's root if it is a directory of this machine (a plain path or ``file:``)."""
    root = getattr(store.backend, "root", None)
    uri = store.backend.uri
    if not isinstance(root, PathRoot) or not (uri[:5].lower() == "file:" or "://" not in uri):
        return None
    return root


def hold_replaced(store: ArtifactStore, path: str) -> int | None:
    """An open descriptor on the local file at ``path`` that a write is about to replace, else None."""
    root = _local_root(store)
    if root is None:
        return None
    try:
        fd = os.open(root.path(path), os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
    except OSError:
        return None  # nothing there (the usual case), or nothing this could hold
    try:
        if os.fstat(fd).st_size < _WORTH_HOLDING:
            os.close(fd)  # freeing a small file costs nothing
            return None
    except OSError:
        os.close(fd)
        return None
    return fd


#: Files smaller than this are freed in the request, as before (their blocks cost nothing to free).
_WORTH_HOLDING = 16 * 1024 * 1024


def release(fd: int | None) -> None:
    """Close ``fd`` (from :func:`hold_replaced`) on the background closer thread."""
    global _closer
    if fd is None:
        return
    with _lock:
        if _closer is None or not _closer.is_alive():
            _closer = threading.Thread(target=_close_forever, name="mlartifacts-release", daemon=True)
            _closer.start()
    _closing.put(fd)


def _close_forever() -> None:
    while True:
        fd = _closing.get()
        try:
            os.close(fd)
        except OSError:
            pass  # already closed: nothing to free


class DigestMismatch(IntegrityError):
    """A request body that does not match the SHA-256 its client announced."""


#: Chunks queued for the hashing thread at most (a few MiB): the writer never runs far ahead.
_QUEUED = 32


def verify_beside(chunks: Iterable[bytes], expected: str, what: str) -> Iterator[bytes]:
    """``chunks`` unchanged, hashed on another thread; at the end, DigestMismatch if they differ.

    The error replaces the stream's end, so a writer that commits only at the end
    (the path-store toolkit renames then) stores nothing.
    """
    pending: queue.Queue[bytes | None] = queue.Queue(_QUEUED)
    digest = hashlib.sha256()

    def hash_all() -> None:
        while (chunk := pending.get()) is not None:
            digest.update(chunk)  # hashlib lets go of the GIL for large chunks: another core works

    thread = threading.Thread(target=hash_all, name="mlartifacts-digest", daemon=True)
    thread.start()
    try:
        for chunk in chunks:
            pending.put(chunk)
            yield chunk
    finally:
        pending.put(None)
        thread.join()
    received = digest.hexdigest()
    if received != expected:
        raise DigestMismatch(f"{what}: received SHA-256 {received}, the client announced {expected}")
