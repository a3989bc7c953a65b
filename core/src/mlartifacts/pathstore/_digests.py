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

import logging
import threading

from ..paths import DIGEST_PREFIX
from ..transfer._digest import file_sha256, valid_hex
from ._protocol import PathFileSystem, PathInfo

__all__ = [
    "SIDECAR_LIMIT",
    "XATTR",
    "format_line",
    "read_digest",
    "remove_sidecar",
    "sidecar_of",
    "write_xattr",
]

log = logging.getLogger("mlartifacts.pathstore")

#: The extended attribute holding the record where the filesystem has them.
XATTR = "user.mlartifacts.sha256"
#: The longest name (in UTF-8 bytes) most filesystems accept; longer sidecars are not made.
SIDECAR_LIMIT = 255
_MAX_LINE = 256


class _Beside:
    """A local file's SHA-256, computed on a thread of its own while the caller copies the file."""

    def __init__(self, local_file: str) -> None:
        self._file = local_file
        self._digest: str | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="mlartifacts-hash", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            self._digest = file_sha256(self._file)
        except BaseException as exc:  # noqa: BLE001 - handed to the caller by result()
            self._error = exc

    def result(self) -> str | None:
        """The digest (None if the file could not be read: the copy's own error tells why)."""
        self._thread.join()
        return self._digest


def digest_beside(local_file: str) -> _Beside:
    """Start hashing ``local_file`` beside a copy of it; ``.result()`` waits for the digest."""
    return _Beside(local_file)


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
    try:
        kind, digest, recorded_size, recorded_time = text.decode("ascii").split()
        if kind != "sha256" or int(recorded_size) != size:
            return None
        if not _same_time(recorded_time, modified):
            return None
    except (UnicodeDecodeError, ValueError):
        return None
    return valid_hex(digest)


def read_digest(
    fs: PathFileSystem, path: str, size: int | None, modified: float | None, sidecar: bool = True
) -> str | None:
    """The SHA-256 recorded for the file at ``path`` (of this size and time), or None.

    ``sidecar`` False: the caller knows there is none (a listing did not show one).
    """
    if fs.has("get_xattr"):
        try:
            line = fs.get_xattr(path, XATTR)
        except NotImplementedError:
            line = None
        except Exception as exc:  # noqa: BLE001 - unreadable: the digest is just unknown
            log.debug("no digest attribute read for %s: %s", path, exc)
            line = None
        if line is not None:
            return parse(line, size, modified)
    return _read_sidecar(fs, path, size, modified) if sidecar else None


def write_xattr(fs: PathFileSystem, path: str, line: bytes) -> bool:
    """Record ``line`` as the file's attribute; False where the filesystem cannot (use a sidecar)."""
    if not fs.has("set_xattr"):
        return False
    try:
        fs.set_xattr(path, XATTR, line)
    except NotImplementedError:
        return False
    return True


def _read_sidecar(fs: PathFileSystem, path: str, size: int | None, modified: float | None) -> str | None:
    sidecar = sidecar_of(fs, path)
    if sidecar is None:
        return None
    try:
        reader = fs.open_read(sidecar, 0, _MAX_LINE)
        try:
            text = reader.read(_MAX_LINE)
        finally:
            reader.close()
    except Exception as exc:  # noqa: BLE001 - no readable sidecar: the digest is just unknown
        log.debug("no digest for %s: %s", path, exc)
        return None
    return parse(text, size, modified)


def remove_sidecar(fs: PathFileSystem, path: str) -> None:
    """Remove the sidecar of a removed file, if there is one (best effort)."""
    sidecar = sidecar_of(fs, path)
    if sidecar is None:
        return
    try:
        fs.remove(sidecar)
    except Exception as exc:  # noqa: BLE001 - usually none was there; a stale one is ignored anyway
        log.debug("no sidecar removed for %s: %s", path, exc)
