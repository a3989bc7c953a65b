"""SHA-256 digests of what the engine moves, computed while the bytes pass (issue 15).

The digest recorded with every object (``FileInfo.digest``) is the lowercase hex
SHA-256 of the whole content. Uploads hash what they read; downloads are checked
against the recorded digest before the file is renamed into place. hashlib releases
the GIL while it hashes more than a few KiB, so hashing overlaps the network.
"""

from __future__ import annotations

import base64
import hashlib
import os
import queue
import threading
from typing import Callable, Iterable, Iterator

from ..errors import IntegrityError

__all__ = [
    "DigestFieldError",
    "Hashing",
    "OrderedHasher",
    "Trailing",
    "file_sha256",
    "from_base64",
    "http_field",
    "parse_http_field",
    "reporting",
    "mismatch",
    "sha256_hex",
    "to_base64",
    "valid_hex",
    "verified",
    "verify_file",
]

_BLOCK = 4 * 1024 * 1024  # large enough that hashlib hashes without the GIL most of the time


def sha256_hex(data: bytes | bytearray | memoryview) -> str:
    """The SHA-256 of ``data`` as lowercase hex."""
    return hashlib.sha256(data).hexdigest()


def file_sha256(local_file: str, length: int | None = None) -> str:
    """The SHA-256 of a local file (its first ``length`` bytes, if given), read in large blocks."""
    digest = hashlib.sha256()
    with open(local_file, "rb", buffering=0) as f:
        remaining = length
        if remaining is None:
            remaining = os.fstat(f.fileno()).st_size
            if remaining <= _BLOCK:  # a small file: one read, no 4 MiB buffer per worker
                digest.update(f.read())
                return digest.hexdigest()
            remaining = None  # read to the end, wherever it is now
        buffer = bytearray(_BLOCK)
        view = memoryview(buffer)
        while remaining is None or remaining > 0:
            n = f.readinto(view if remaining is None else view[: min(_BLOCK, remaining)])
            if not n:
                break
            digest.update(view[:n])
            if remaining is not None:
                remaining -= n
    return digest.hexdigest()


def to_base64(hex_digest: str) -> str:
    """A hex digest as standard base64 (S3's ``x-amz-checksum-sha256``, RFC 9530's value)."""
    return base64.b64encode(bytes.fromhex(hex_digest)).decode("ascii")


def from_base64(value: str) -> str | None:
    """A base64 SHA-256 as lowercase hex, or None if it is not one."""
    try:
        raw = base64.b64decode(value.strip(), validate=True)
    except (ValueError, TypeError):
        return None
    return raw.hex() if len(raw) == hashlib.sha256().digest_size else None


def http_field(hex_digest: str) -> str:
    """The ``Repr-Digest`` / ``Content-Digest`` value for a SHA-256 (RFC 9530): ``sha-256=:<b64>:``."""
    return f"sha-256=:{to_base64(hex_digest)}:"


class DigestFieldError(ValueError):
    """A ``Content-Digest`` / ``Repr-Digest`` whose ``sha-256`` member is not a SHA-256."""


def parse_http_field(value: str | None) -> str | None:
    """The SHA-256 (hex) in a ``Content-Digest`` / ``Repr-Digest`` field, or None without one.

    The field is a structured-field dictionary (RFC 8941) of algorithm to byte sequence;
    other algorithms are ignored. A malformed ``sha-256`` member raises DigestFieldError.
    """
    if not value:
        return None
    for member in value.split(","):
        key, _, item = member.strip().partition("=")
        if key.strip().lower() != "sha-256":
            continue
        item = item.split(";", 1)[0].strip()  # parameters, if any, say nothing we use
        found = from_base64(item[1:-1]) if len(item) > 2 and item[0] == item[-1] == ":" else None
        if found is None:
            raise DigestFieldError(f"the sha-256 digest {item!r} is not a base64 SHA-256 between colons")
        return found
    return None


def valid_hex(value: object) -> str | None:
    """``value`` as a lowercase hex SHA-256, or None if it is not one (metadata read back)."""
    if not isinstance(value, str):
        return None
    value = value.strip().lower()
    if len(value) == 64 and all(c in "0123456789abcdef" for c in value):
        return value
    return None


def mismatch(where: str, expected: str, received: str, source: str) -> IntegrityError:
    """The error for bytes whose SHA-256 differs from the expected one.

    ``source`` says where the expected digest came from ("the s3 backend recorded",
    "the client announced").
    """
    return IntegrityError(
        f"{where}: the SHA-256 of the received bytes is {received}, but {source} {expected}; nothing was kept"
    )


class OrderedHasher:
    """Hashes parts handed in out of order (by number, from 1), in order, as soon as they can be.

    A part that arrives before its predecessors waits here (its worker holds it anyway
    while it uploads); at most about as many as there are workers ever wait. A part
    handed in twice (a retried read) is hashed once.
    """

    def __init__(self) -> None:
        self._digest = hashlib.sha256()
        self._next = 1
        self._waiting: dict[int, bytes] = {}
        self._lock = threading.Lock()
        self._hashing = threading.Lock()  # the update itself runs outside _lock

    def feed(self, number: int, data: bytes) -> None:
        """Hand in part ``number``; hashes it (and any parts it unblocked) when its turn comes."""
        with self._lock:
            if number < self._next or number in self._waiting:
                return
            self._waiting[number] = data
        self._drain()

    def _drain(self) -> None:
        # One thread hashes at a time, in order; others just leave their part waiting.
        while self._hashing.acquire(blocking=False):
            try:
                while True:
                    with self._lock:
                        data = self._waiting.pop(self._next, None)
                        if data is None:
                            break
                    self._digest.update(data)  # the GIL is released for large parts
                    with self._lock:
                        self._next += 1
            finally:
                self._hashing.release()
            with self._lock:
                if self._next not in self._waiting:
                    return  # nothing became hashable while the lock was being released

    def hexdigest(self, parts: int) -> str | None:
        """The digest once all ``parts`` were hashed, else None (some were never handed in)."""
        with self._lock:
            complete = self._next == parts + 1 and not self._waiting
        return self._digest.hexdigest() if complete else None


class Hashing:
    """A stream of chunks passed through unchanged while their SHA-256 is computed.

    The first bytes are hashed in the consumer's thread; past :data:`BESIDE_FROM` bytes
    the rest is hashed on a thread of its own, a few chunks behind, so that a large
    stream's hashing runs on another core while the consumer writes (hashlib lets go of
    the GIL). :meth:`close` stops that thread if the stream is abandoned.
    """

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._chunks = iter(chunks)
        self._digest = hashlib.sha256()
        self._inline = 0
        self._queue: queue.Queue[bytes | None] | None = None
        self._thread: threading.Thread | None = None
        self.done = False

    def __iter__(self) -> Iterator[bytes]:
        return self

    def __next__(self) -> bytes:
        try:
            chunk = next(self._chunks)
        except StopIteration:
            self.done = True
            self.close()
            raise
        if self._queue is not None:
            self._queue.put(chunk)
            return chunk
        self._digest.update(chunk)
        self._inline += len(chunk)
        if self._inline >= BESIDE_FROM:
            self._queue = queue.Queue(_QUEUED)
            self._thread = threading.Thread(target=self._hash_queued, name="mlartifacts-hash", daemon=True)
            self._thread.start()
        return chunk

    def _hash_queued(self) -> None:
        assert self._queue is not None
        while (chunk := self._queue.get()) is not None:
            self._digest.update(chunk)

    def close(self) -> None:
        """Wait for the hashing thread (if any) to hash what it was given, and end it."""
        if self._thread is not None and self._queue is not None:
            self._queue.put(None)
            self._thread.join()
            self._thread = None

    def hexdigest(self) -> str | None:
        """The digest of the whole stream, or None while it is not finished."""
        if not self.done:
            return None
        self.close()
        return self._digest.hexdigest()


#: Streams longer than this are hashed beside their consumer (a thread costs more than small ones).
BESIDE_FROM = 8 * 1024 * 1024
#: Chunks waiting for the hashing thread at most: the consumer never runs far ahead of it.
_QUEUED = 32


def verified(chunks: Iterable[bytes], expected: str, where: str) -> Iterator[bytes]:
    """``chunks`` unchanged, but at their end an IntegrityError instead of the end if they differ.

    A backend's ``write`` stores nothing when its stream raises, and it cannot have
    committed anything before the end of the stream: so bytes that do not match the
    announced digest are never stored, whatever the backend checks itself.
    """
    hashed = Hashing(chunks)
    try:
        yield from hashed
    finally:
        hashed.close()
    received = hashed.hexdigest()
    if received is not None and received != expected:
        raise mismatch(where, expected, received, "the writer announced")


class Trailing:
    """Hashes a file while a download writes it, on a thread of its own, behind the bytes written.

    The download reports bytes as it writes them (``advance``); this thread reads the
    file up to there (from the page cache: just written) and hashes it, on another core,
    so that at the end only the tail is left to hash. It assumes the file is written from
    its start, in order; a plugin that writes otherwise only costs a second, full read:
    :func:`verify_file` re-reads the whole file before it reports a mismatch.
    """

    def __init__(self, local_file: str) -> None:
        self._file = local_file
        self._digest = hashlib.sha256()
        self._offset = 0
        self._reported = 0
        self._done = False
        self._failed = False
        self._cond = threading.Condition()
        self._thread = threading.Thread(target=self._run, name="mlartifacts-hash", daemon=True)
        self._thread.start()

    def advance(self, nbytes: int) -> None:
        """The download wrote ``nbytes`` more."""
        with self._cond:
            self._reported += nbytes
            if self._reported - self._offset >= _BLOCK:
                self._cond.notify()

    def reach(self, offset: int) -> None:
        """The file is complete up to ``offset`` (parallel ranges: the contiguous prefix written)."""
        with self._cond:
            if offset > self._reported:
                self._reported = offset
                if self._reported - self._offset >= _BLOCK:
                    self._cond.notify()

    def _run(self) -> None:
        try:
            with open(self._file, "rb", buffering=0) as f:
                fd = f.fileno()
                while True:
                    with self._cond:
                        while not self._done and self._reported - self._offset < _BLOCK:
                            self._cond.wait(0.05)
                        done = self._done
                        if self._failed:
                            return  # abandoned: the rest may be a hole (parallel ranges), never hashed
                    self._hash_available(fd, None if done else _BLOCK)
                    if done:
                        return
        except OSError:
            self._failed = True

    def _hash_available(self, fd: int, limit: int | None) -> None:
        """Hash what the file holds past the offset (``limit``: at most one block, else to its end)."""
        while True:
            data = os.pread(fd, _BLOCK, self._offset)
            if not data:
                return
            self._digest.update(data)  # without the GIL, while the download goes on
            self._offset += len(data)
            if limit is not None:
                return

    def finish(self) -> str | None:
        """The digest of the whole file as written (None if it could not be followed)."""
        with self._cond:
            self._done = True
            self._cond.notify()
        self._thread.join()
        return None if self._failed else self._digest.hexdigest()

    def abandon(self) -> None:
        """Stop following the file (the download failed), without hashing what is left of it."""
        with self._cond:
            self._failed = True
            self._done = True
            self._cond.notify()
        self._thread.join()


def reporting(progress: Callable[[int], None], trailing: Trailing | None) -> Callable[[int], None]:
    """``progress``, also telling ``trailing`` (when there is one) how far the file is written."""
    if trailing is None:
        return progress

    def report(nbytes: int) -> None:
        progress(nbytes)
        trailing.advance(nbytes)

    return report


def verify_file(
    local_file: str, expected: str, where: str, backend: str, trailing: Trailing | None = None
) -> None:
    """Check a received file against the SHA-256 recorded with it; IntegrityError if it differs.

    With ``trailing`` (a hash made while the file was written) only its tail is read now;
    if that hash differs, the whole file is read again before anything is reported.
    """
    if trailing is not None and trailing.finish() == expected:
        return
    received = file_sha256(local_file)
    if received != expected:
        raise mismatch(where, expected, received, f"the {backend} backend recorded")
