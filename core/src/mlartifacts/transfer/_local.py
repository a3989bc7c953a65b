"""Local-file side of transfers: atomic destinations, verification, directory walks."""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import itertools
import logging
import os
import tempfile
from typing import Iterator

from .. import paths as _paths
from .._types import FileInfo
from ..errors import IntegrityError, InvalidPath, NotFound
from ._checksums import hasher, hexdigest
from ._digest import Trailing, verify_file

__all__ = ["DEFAULT_MODE", "atomic_destination", "check_received", "verify", "walk_files", "write_atomically"]

log = logging.getLogger("mlartifacts.transfer")

_BLOCK = 1024 * 1024
_NAMES = itertools.count()  # temporary names of write_atomically (next() is atomic under the GIL)
_ONTO_DIRECTORY = (errno.EISDIR, errno.ENOTEMPTY, errno.EEXIST)  # rename(2) of a file onto a directory
_NEW_FILE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)


def _umask() -> int:
    # os.umask can only be read by setting it; do it once, at import of this module.
    mask = os.umask(0)
    os.umask(mask)
    return mask


DEFAULT_MODE = 0o666 & ~_umask()


@contextlib.contextmanager
def atomic_destination(dest: str) -> Iterator[str]:
    """Yield a temporary path next to ``dest``; on success it replaces ``dest``.

    On any failure the temporary is removed, so a failed download never leaves a
    partial file behind under either name.
    """
    dest = os.path.abspath(dest)
    if os.path.isdir(dest):
        raise InvalidPath(f"cannot download to {dest!r}: it is a directory")
    directory = os.path.dirname(dest)
    try:
        fd, tmp = tempfile.mkstemp(prefix=_paths.TEMP_PREFIX, dir=directory)
    except FileNotFoundError:  # the directory is new: create it (only then, it costs)
        os.makedirs(directory, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=_paths.TEMP_PREFIX, dir=directory)
    os.close(fd)
    try:
        yield tmp
        os.chmod(tmp, DEFAULT_MODE)  # mkstemp creates 0600; downloads get normal permissions
        os.replace(tmp, dest)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_atomically(dest: str, data: bytes) -> None:
    """Write ``data`` as ``dest`` through a temporary next to it, renamed into place when complete.

    What :func:`atomic_destination` does for a file written by someone else, for bytes
    already in memory (a batch's small files), in four system calls: the temporary is
    created with O_EXCL under a name unique to this process, with the umask's mode (no
    chmod), written from its descriptor, and renamed. A third of atomic_destination's
    CPU per file, which counts for trees of thousands of small files.
    """
    directory = os.path.dirname(dest) or "."
    tmp = os.path.join(directory, f"{_paths.TEMP_PREFIX}{os.getpid()}-{next(_NAMES)}")
    try:
        fd = os.open(tmp, _NEW_FILE, 0o666)
    except FileNotFoundError:  # the directory is new: create it (only then, it costs)
        os.makedirs(directory, exist_ok=True)
        fd = os.open(tmp, _NEW_FILE, 0o666)
    except FileExistsError:  # left by another process that had this PID: let mkstemp choose
        with atomic_destination(dest) as other, open(other, "wb") as f:
            f.write(data)
        return
    try:
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
        finally:
            os.close(fd)
        os.replace(tmp, dest)
    except BaseException as exc:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        renamed_onto_directory = isinstance(exc, OSError) and exc.errno in _ONTO_DIRECTORY
        if renamed_onto_directory and os.path.isdir(dest):
            raise InvalidPath(f"cannot download to {os.path.abspath(dest)!r}: it is a directory") from exc
        raise


def verify(local_file: str, expected: FileInfo | None, where: str) -> None:
    """Check a received file against the size and checksum the backend announced."""
    if expected is None:
        return
    if expected.file_size is not None:
        actual = os.path.getsize(local_file)
        if actual != expected.file_size:
            raise IntegrityError(f"{where}: received {actual} bytes, expected {expected.file_size}")
    checksum = expected.checksum
    if checksum is None:
        return
    digest = hasher(checksum.algorithm)
    if digest is None:
        log.debug("%s: %s checksum not verified (size only)", where, checksum.algorithm)
        return
    with open(local_file, "rb") as f:
        for block in iter(lambda: f.read(_BLOCK), b""):
            digest.update(block)
    received = hexdigest(digest)
    if received != checksum.value.lower():
        raise IntegrityError(
            f"{where}: {checksum.algorithm} of received bytes is {received}, expected {checksum.value}"
        )


def walk_files(local_dir: str) -> list[tuple[str, str, int]]:
    """Every file below ``local_dir`` as (local path, relative POSIX path, size), sorted.

    Symbolic links to files are followed (their content is uploaded); links to
    directories are not descended, as ``os.walk`` does by default. Names reserved by
    mlartifacts (temporaries, digest sidecars: a directory that is a store) are skipped.
    """
    if not os.path.isdir(local_dir):
        raise NotFound(f"local directory {local_dir!r} does not exist")
    found = []
    for directory, dirnames, filenames in os.walk(local_dir):
        dirnames.sort()
        for name in sorted(filenames):
            if name.startswith(_paths.RESERVED_PREFIXES):
                continue
            local = os.path.join(directory, name)
            rel = os.path.relpath(local, local_dir).replace(os.sep, "/")
            try:
                size = os.stat(local).st_size
            except FileNotFoundError:  # a dangling link, or a file removed while walking
                log.warning("skipping %s: it vanished or is a dangling link", local)
                continue
            found.append((local, rel, size))
    return found


def check_received(
    local_file: str,
    info: FileInfo,
    sent: str | None,
    where: str,
    backend: str,
    digests: bool,
    trailing: Trailing | None = None,
) -> None:
    """Verify a received file: its size, then the SHA-256 recorded with it, else the native checksum.

    ``sent`` is the digest the storage sent with these very bytes (it wins over a
    listing's, which may describe an older version). ``digests`` False: size and
    native checksum only (``MLARTIFACTS_DIGESTS=false``).
    """
    digest = (sent or info.digest) if digests else None
    try:
        verify(local_file, info if digest is None else dataclasses.replace(info, checksum=None), where)
    except BaseException:
        if trailing is not None:
            trailing.abandon()
        raise
    if digest is not None:
        verify_file(local_file, digest, where, backend, trailing)
    elif trailing is not None:
        trailing.abandon()
