"""Batches of small files as tar streams (POSIX pax), written and read without seeking.

The artifacts service moves a batch of small files in one request this way: the
client sends one stream, the server reads it member by member, and the other way
round for downloads. Only regular files are written or accepted; names are
checked by the caller.
"""

from __future__ import annotations

import io
import tarfile
import time
from typing import IO, Iterable, Iterator, cast

from .errors import BackendError

__all__ = ["DIGEST_HEADER", "BatchFormatError", "ChunkReader", "reader", "read_members", "write_members"]

_FLUSH = 1024 * 1024  # hand out the stream in blocks of about this size


class BatchFormatError(BackendError):
    """A batch stream that is not a plain tar of regular files, or ends too soon."""


class ChunkReader(io.RawIOBase):
    """A readable file over an iterator of byte chunks (a request or response body)."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._chunks = iter(chunks)
        self._pending = memoryview(b"")

    def readable(self) -> bool:
        return True

    def close(self) -> None:
        """Close the chunk iterator too (a generator holding a file or a connection)."""
        close = getattr(self._chunks, "close", None)
        if close is not None:
            close()
        super().close()

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        while not self._pending:
            chunk = next(self._chunks, None)
            if chunk is None:
                return 0
            self._pending = memoryview(chunk)
        n = min(len(buffer), len(self._pending))
        buffer[:n] = self._pending[:n]
        self._pending = self._pending[n:]
        return n


def reader(chunks: Iterable[bytes]) -> IO[bytes]:
    """``chunks`` as a readable binary file."""
    return cast(IO[bytes], ChunkReader(chunks))


class _Spool:
    """A write-only file that keeps what is written until it is drained."""

    def __init__(self) -> None:
        self._parts: list[bytes] = []
        self.size = 0

    def write(self, data: bytes) -> int:
        self._parts.append(bytes(data))
        self.size += len(data)
        return len(data)

    def drain(self) -> bytes:
        out = b"".join(self._parts)
        self._parts.clear()
        self.size = 0
        return out


#: The pax header carrying a member's SHA-256 (lowercase hex): a batch has a digest per file.
DIGEST_HEADER = "MLARTIFACTS.sha256"


def write_members(
    members: Iterable[tuple[str, int, IO[bytes]] | tuple[str, int, IO[bytes], str | None]],
) -> Iterator[bytes]:
    """A tar stream of ``(name, size, file[, sha256])`` members, as blocks of about 1 MiB.

    Each file is read for exactly ``size`` bytes; one shorter than announced fails
    the stream (tarfile raises), so a receiver never takes a short file for whole.
    A member's SHA-256, when given, travels in its pax header (``DIGEST_HEADER``).
    """
    spool = _Spool()
    now = int(time.time())
    with tarfile.open(fileobj=spool, mode="w|", format=tarfile.PAX_FORMAT) as tar:  # type: ignore[call-overload]
        for member in members:
            name, size, data = member[:3]
            info = tarfile.TarInfo(name)
            info.size = size
            info.mtime = now
            info.mode = 0o644
            if len(member) > 3 and member[3]:
                info.pax_headers = {DIGEST_HEADER: member[3]}
            try:
                tar.addfile(info, data)
            finally:
                data.close()
            if spool.size >= _FLUSH:
                yield spool.drain()
    tail = spool.drain()
    if tail:
        yield tail


def member_digest(stream_member: tarfile.TarInfo) -> str | None:
    """The SHA-256 a member's pax header announces, if any."""
    value = stream_member.pax_headers.get(DIGEST_HEADER)
    return value if isinstance(value, str) else None


def read_members(stream: IO[bytes]) -> Iterator[tuple[str, int, IO[bytes], str | None]]:
    """The members of a tar stream as ``(name, size, file, announced SHA-256 or None)``, in order.

    Each member's file must be read (or dropped) before the next member is asked
    for; reading one that the stream cuts short raises ``tarfile.ReadError``.
    Directory entries are skipped (files imply their directories); links, devices
    and the like are refused, as is a stream that is not plain tar.
    """
    try:
        with tarfile.open(fileobj=stream, mode="r|") as tar:
            for member in tar:
                if member.isdir():
                    continue
                if not member.isreg():
                    raise BatchFormatError(f"batch member {member.name!r} is not a regular file")
                data = tar.extractfile(member)
                assert data is not None  # regular files always have a reader
                yield member.name, member.size, data, member_digest(member)
    except tarfile.TarError as exc:
        raise BatchFormatError(f"not a complete batch (tar) stream: {exc}") from exc
