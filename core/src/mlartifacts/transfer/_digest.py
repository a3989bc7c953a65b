"""SHA-256 digests of what the engine moves, computed while the bytes pass (issue 15).

The digest recorded with every object (``FileInfo.digest``) is the lowercase hex
SHA-256 of the whole content. Uploads hash what they read; downloads are checked
against the recorded digest before the file is renamed into place. hashlib releases
the GIL while it hashes more than a few KiB, so hashing overlaps the network.
"""

from __future__ import annotations

import base64
import hashlib
import threading
from typing import Iterable, Iterator

from ..errors import IntegrityError

__all__ = [
    "Hashing",
    "OrderedHasher",
    "file_sha256",
    "from_base64",
    "mismatch",
    "sha256_hex",
    "to_base64",
    "valid_hex",
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
        f"{where}: the SHA-256 of the received bytes is {received}, but {source} {expected}; "
        "nothing was stored"
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
    """A stream of chunks passed through unchanged while their SHA-256 is computed."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._chunks = iter(chunks)
        self._digest = hashlib.sha256()
        self.done = False

    def __iter__(self) -> Iterator[bytes]:
        return self

    def __next__(self) -> bytes:
        try:
            chunk = next(self._chunks)
        except StopIteration:
            self.done = True
            raise
        self._digest.update(chunk)
        return chunk

    def hexdigest(self) -> str | None:
        """The digest of the whole stream, or None while it is not finished."""
        return self._digest.hexdigest() if self.done else None


def verify_file(local_file: str, expected: str, where: str, backend: str) -> None:
    """Check a received file against the SHA-256 recorded with it; IntegrityError if it differs."""
    received = file_sha256(local_file)
    if received != expected:
        raise mismatch(where, expected, received, f"the {backend} backend recorded")
