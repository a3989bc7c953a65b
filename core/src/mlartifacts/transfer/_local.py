"""Local-file side of transfers: atomic destinations, verification, directory walks."""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
from typing import Iterator

from .. import paths as _paths
from .._types import FileInfo
from ..errors import IntegrityError, InvalidPath, NotFound
from ._checksums import hasher, hexdigest

__all__ = ["DEFAULT_MODE", "atomic_destination", "verify", "walk_files"]

log = logging.getLogger("mlartifacts.transfer")

_BLOCK = 1024 * 1024


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
    directories are not descended, as ``os.walk`` does by default.
    """
    if not os.path.isdir(local_dir):
        raise NotFound(f"local directory {local_dir!r} does not exist")
    found = []
    for directory, dirnames, filenames in os.walk(local_dir):
        dirnames.sort()
        for name in sorted(filenames):
            local = os.path.join(directory, name)
            rel = os.path.relpath(local, local_dir).replace(os.sep, "/")
            try:
                size = os.stat(local).st_size
            except FileNotFoundError:  # a dangling link, or a file removed while walking
                log.warning("skipping %s: it vanished or is a dangling link", local)
                continue
            found.append((local, rel, size))
    return found
