"""Digests of path-store files: an extended attribute where the store has them, else a sidecar (issue 15).

The record is one line, ``sha256 <hex> <size> <mtime>``: the SHA-256 of the file and
the size and modification time the file had when it was recorded. The toolkit writes
it before the file's temporary is renamed into place (a rename keeps all three), so a
record whose size or time differ from the file's describes other bytes and is ignored.

Where the filesystem implements ``get_xattr``/``set_xattr`` (the local disk), the line
is the temporary's attribute ``user.mlartifacts.sha256``: it moves with the file, atomically.
Elsewhere (SFTP, FTP, HDFS) it is a sidecar file: for ``dir/name``,
``dir/.mlartifacts-sha256.name``. Any store made of the eight primitives gets this.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import time

from ..paths import DIGEST_PREFIX
from ..transfer._digest import valid_hex
from ._protocol import PathFileSystem, PathInfo

__all__ = [
    "SIDECAR_LIMIT",
    "SMALL_FILE",
    "XATTR",
    "format_line",
    "judge",
    "read_digest",
    "read_record",
    "remove_sidecar",
    "sidecar_of",
    "stored_sha256",
    "write_xattr",
]

log = logging.getLogger("mlartifacts.pathstore")

#: The extended attribute holding the record where the filesystem has them.
XATTR = "user.mlartifacts.sha256"
#: The longest name (in UTF-8 bytes) most filesystems accept; longer sidecars are not made.
SIDECAR_LIMIT = 255
_MAX_LINE = 256


#: A source modified less than this long before its copy began may be modified again within
#: the same tick of a coarse file clock (or a 2-second one) without its time changing: its
#: hash beside the copy is not trusted, the copy is hashed instead ("racy git").
RACY_SECONDS = 2.0
_BLOCK = 4 * 1024 * 1024  # large enough that hashlib hashes without the GIL
#: Files up to this size are uploaded from one read, hashed in the caller's thread (no kernel
#: copy, no thread: for a small file both cost more than the hash).
SMALL_FILE = 1024 * 1024


def _identity(st: os.stat_result) -> tuple[int, int, int, int, int]:
    """What changes when a file is written, truncated, replaced or renamed over."""
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


class _Beside:
    """A local file's SHA-256, computed on a thread of its own while the caller copies the file.

    The hash and the copy read the file separately (the copy may never pass through
    this process: a kernel copy), so the hash describes the copy only if the file did
    not change meanwhile: :meth:`result` gives it only if the file's identity, size and
    times are the same after the copy as before it, and were not too recent to tell.
    """

    def __init__(self, local_file: str) -> None:
        self._file = local_file
        self._digest: str | None = None
        self._stop = threading.Event()
        self._started = time.time()
        try:
            self._before: os.stat_result | None = os.stat(local_file)
        except OSError:  # the copy's own error tells why
            self._before = None
        self._thread = threading.Thread(target=self._run, name="mlartifacts-hash", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        if self._before is None:
            return
        try:
            with open(self._file, "rb", buffering=0) as f:
                if _identity(os.fstat(f.fileno())) != _identity(self._before):
                    return  # replaced since it was looked at: not what the copy reads
                digest = hashlib.sha256()
                buffer = memoryview(bytearray(_BLOCK))
                while not self._stop.is_set():
                    n = f.readinto(buffer)
                    if not n:
                        self._digest = digest.hexdigest()
                        return
                    digest.update(buffer[:n])  # without the GIL, beside the copy
        except OSError as exc:
            log.debug("%s not hashed beside its copy: %s", self._file, exc)

    def result(self) -> str | None:
        """The file's digest, or None when it cannot be trusted to describe the copy just made."""
        self._join()
        if self._digest is None or self._before is None:
            return None
        try:
            after = os.stat(self._file)
        except OSError:
            return None
        if _identity(after) != _identity(self._before):
            log.info("%s changed while it was copied: the copy is hashed instead", self._file)
            return None
        if self._started - self._before.st_mtime < RACY_SECONDS:
            log.debug("%s was modified just before its copy: the copy is hashed instead", self._file)
            return None
        return self._digest

    def cancel(self) -> None:
        """Stop hashing (the copy failed) and wait for the thread."""
        self._stop.set()
        self._join()

    def _join(self) -> None:
        self._thread.join()


def digest_beside(local_file: str) -> _Beside:
    """Start hashing ``local_file`` beside a copy of it; ``.result()`` waits for the digest."""
    return _Beside(local_file)


def stored_sha256(fs: PathFileSystem, path: str) -> str:
    """The SHA-256 of a file of the store, read back (a copy whose source changed as it was made)."""
    digest = hashlib.sha256()
    reader = fs.open_read(path, 0, None)
    try:
        for block in iter(lambda: reader.read(max(fs.block_size, _BLOCK)), b""):
            digest.update(block)
    finally:
        reader.close()
    return digest.hexdigest()


def sidecar_of(fs: PathFileSystem, path: str) -> str | None:
    """The sidecar's path for the file at ``path``, or None when its name would be too long."""
    directory, name = fs.pathmod.split(path)
    sidecar = DIGEST_PREFIX + name
    if len(sidecar.encode("utf-8", "surrogateescape")) > SIDECAR_LIMIT:
        return None
    joined: str = fs.pathmod.join(directory, sidecar)
    return joined


def format_line(digest: str, info: PathInfo) -> bytes:
    """The sidecar's content for a file of ``digest`` and the size and time in ``info``."""
    modified = "-" if info.modified is None else repr(info.modified)  # a store without times
    return f"sha256 {digest} {info.size} {modified}\n".encode("ascii")


def _same_time(text: str, actual: float | None) -> bool:
    if text == "-" or actual is None:
        return text == "-" and actual is None
    recorded = float(text)
    if recorded == actual:
        return True
    # Stores that give whole seconds (FTP, SFTP v3) in one answer and more in another.
    whole = float(recorded).is_integer() or float(actual).is_integer()
    return whole and int(recorded) == int(actual)


def parse(text: bytes, size: int | None, modified: float | None) -> str | None:
    """The digest a sidecar records, if it describes a file of this size and time."""
    return judge(text, size, modified)[0]


def judge(text: bytes, size: int | None, modified: float | None) -> tuple[str | None, str | None]:
    """A record read back, as ``(digest, stale)``: its digest if it describes a file of this
    size and time, else (the file changed since it was recorded) as ``stale``."""
    try:
        kind, digest, recorded_size, recorded_time = text.decode("ascii").split()
        if kind != "sha256":
            return None, None
        current = int(recorded_size) == size and _same_time(recorded_time, modified)
    except (UnicodeDecodeError, ValueError):
        return None, None
    found = valid_hex(digest)
    return (found, None) if current else (None, found)


def read_digest(
    fs: PathFileSystem, path: str, size: int | None, modified: float | None, sidecar: bool = True
) -> str | None:
    """The SHA-256 recorded for the file at ``path`` (of this size and time), or None.

    ``sidecar`` False: the caller knows there is none (a listing did not show one).
    """
    return read_record(fs, path, size, modified, sidecar)[0]


def read_record(
    fs: PathFileSystem, path: str, size: int | None, modified: float | None, sidecar: bool = True
) -> tuple[str | None, str | None]:
    """The record of the file at ``path`` as ``(digest, stale)`` (see :func:`judge`); Nones without one."""
    line = None
    if fs.has("get_xattr"):
        try:
            line = fs.get_xattr(path, XATTR)
        except NotImplementedError:
            line = None
        except Exception as exc:  # noqa: BLE001 - unreadable: the digest is just unknown
            log.debug("no digest attribute read for %s: %s", path, exc)
            line = None
    if line is None and sidecar:
        line = _read_sidecar(fs, path)
    return (None, None) if line is None else judge(line, size, modified)


def write_xattr(fs: PathFileSystem, path: str, line: bytes) -> bool:
    """Record ``line`` as the file's attribute; False where the filesystem cannot (use a sidecar)."""
    if not fs.has("set_xattr"):
        return False
    try:
        fs.set_xattr(path, XATTR, line)
    except NotImplementedError:
        return False
    return True


def _read_sidecar(fs: PathFileSystem, path: str) -> bytes | None:
    sidecar = sidecar_of(fs, path)
    if sidecar is None:
        return None
    try:
        reader = fs.open_read(sidecar, 0, _MAX_LINE)
        try:
            text: bytes = reader.read(_MAX_LINE)
        finally:
            reader.close()
    except Exception as exc:  # noqa: BLE001 - no readable sidecar: the digest is just unknown
        log.debug("no digest for %s: %s", path, exc)
        return None
    return text


def remove_sidecar(fs: PathFileSystem, path: str) -> None:
    """Remove the sidecar of a removed file, if there is one (best effort)."""
    sidecar = sidecar_of(fs, path)
    if sidecar is None:
        return
    try:
        fs.remove(sidecar)
    except Exception as exc:  # noqa: BLE001 - usually none was there; a stale one is ignored anyway
        log.debug("no sidecar removed for %s: %s", path, exc)
