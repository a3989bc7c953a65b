"""Files, derived from the primitives: atomic writes through a temporary name, ranged reads."""

from __future__ import annotations

import logging
import uuid
from typing import Callable, Iterable, Iterator, TypeVar

from ..errors import ArtifactError, InvalidPath, NotFound, PreconditionFailed
from ..paths import TEMP_PREFIX
from ..transfer._digest import Hashing, mismatch
from ._digests import format_line, sidecar_of, write_xattr
from ._protocol import Progress, Reader, Writer
from ._root import PathRoot
from ._tree import makedirs

__all__ = ["CallerError", "open_reader", "read_blocks", "write_atomically", "write_stream"]

log = logging.getLogger("mlartifacts.pathstore")

T = TypeVar("T")


class CallerError(Exception):
    """The caller's own stream raised: its error goes back to the caller as it was raised."""


def temporary_name() -> str:
    """A fresh temporary name: recognisable by its prefix, hidden from listings, never an artifact."""
    return f"{TEMP_PREFIX}{uuid.uuid4().hex}"


def write_atomically(
    root: PathRoot,
    rel: str,
    fill: Callable[[str], T],
    restartable: Callable[[], bool] = lambda: True,
    digest: Callable[[], str | None] = lambda: None,
) -> T:
    """Have ``fill(temp)`` write a new temporary beside the target, then rename it over the target.

    ``digest()``, asked once ``fill`` is done, is the content's SHA-256: it is recorded
    in the target's sidecar before the rename (see :mod:`._digests`).

    Parent directories are made first (``mkdir -p``). The temporary is removed if
    anything fails, and only ever renamed once complete. If the directory is deleted
    meanwhile (a concurrent tree delete), the write starts again while ``restartable()``
    (no byte of a one-time stream consumed yet); otherwise it fails with
    :class:`PreconditionFailed`, and nothing is stored.
    """
    fs, where = root.fs, root.where(rel)
    target = root.path(rel)
    parent = fs.pathmod.dirname(target)
    if parent == target:
        raise InvalidPath(f"{where}: cannot write over the store's root directory")
    for attempt in range(_ATTEMPTS):
        last = attempt + 1 == _ATTEMPTS
        if parent not in fs.known_dirs:
            try:
                makedirs(root, parent, where)
            except NotFound as exc:  # a directory of the chain was removed while it was made
                if last:
                    raise _deleted_meanwhile(where) from exc
                fs.known_dirs.forget(parent, fs.pathmod.sep)
                continue
            target = root.path(rel)  # again: a link may have appeared while making directories
            parent = fs.pathmod.dirname(target)
        temp = fs.pathmod.join(parent, temporary_name())
        try:
            try:
                result = fill(temp)
                known = digest()
                if known is not None:  # recorded before the rename, so it is there when the file is
                    _record(root, temp, target, known, where)
            except CallerError:
                raise
            except Exception as exc:
                if fs.translate(exc, where, "write").transient or not _gone(root, parent):
                    raise
                if last or not restartable():
                    raise _deleted_meanwhile(where) from exc
                # The directory was removed behind our back: make it again, and try once more.
                fs.known_dirs.forget(parent, fs.pathmod.sep)
                continue
            _rename_over(root, temp, target, where)
        except BaseException:
            _remove_quietly(root, temp)
            raise
        return result
    raise AssertionError("unreachable")  # pragma: no cover


#: Tries of a write whose directory a concurrent delete keeps removing.
_ATTEMPTS = 3


def _deleted_meanwhile(where: str) -> PreconditionFailed:
    return PreconditionFailed(f"{where}: its directory was deleted while it was written; nothing was stored")


def _gone(root: PathRoot, directory: str) -> bool:
    try:
        return root.fs.stat(directory) is None
    except Exception:  # noqa: BLE001 - unknown: the write's own error is what matters
        return False


def _rename_over(root: PathRoot, temp: str, target: str, where: str) -> None:
    fs = root.fs
    try:
        fs.rename(temp, target)
        return
    except Exception as exc:
        error = fs.translate(exc, where, "write")
        if not error.transient and _gone(root, temp):
            # A concurrent tree delete took the complete temporary with it.
            raise _deleted_meanwhile(where) from exc
        info = None if error.transient else fs.stat(target)
        if info is None:
            raise error from exc
        if info.is_dir:
            raise InvalidPath(f"cannot write {where}: it is a directory") from exc
    # A rename that does not replace (SFTP v3, some FTP servers): remove the file first,
    # leaving a short moment in which the name is missing, never one in which it is partial.
    fs.remove(target)
    fs.rename(temp, target)


def _record(root: PathRoot, temp: str, target: str, digest: str, where: str) -> None:
    """Record the complete temporary's digest (with its size and time, which a rename keeps)."""
    try:
        _record_digest(root, temp, target, digest, where)
    except Exception as exc:
        # A concurrent tree delete took the temporary (its directory may even be back):
        # as when the rename finds it gone, nothing is stored, and the caller is told so.
        if not root.fs.translate(exc, where, "write").transient and _gone(root, temp):
            raise _deleted_meanwhile(where) from exc
        raise


def _record_digest(root: PathRoot, temp: str, target: str, digest: str, where: str) -> None:
    fs = root.fs
    info = fs.stat(temp)
    if info is None:
        raise _deleted_meanwhile(where)
    line = format_line(digest, info)
    if write_xattr(fs, temp, line):
        return  # on the file itself: it moves with the rename
    sidecar = sidecar_of(fs, target)
    if sidecar is None:
        log.debug("%s: no digest recorded, the name is too long for a sidecar", where)
        return
    staged = fs.pathmod.join(fs.pathmod.dirname(target), temporary_name())
    try:
        writer = fs.open_write(staged)
        try:
            writer.write(line)
            writer.close()
        except BaseException:
            writer.abort()
            raise
        _rename_over(root, staged, sidecar, where)
    except BaseException:
        _remove_quietly(root, staged)
        raise


def _remove_quietly(root: PathRoot, temp: str) -> None:
    # The write may have failed because its connection died, and a pooled session the
    # first removal borrows may have died with it (the pool drops it then): try again.
    for attempt in range(_CLEANUP_ATTEMPTS):
        try:
            root.fs.remove(temp)
            return
        except Exception as exc:  # noqa: BLE001 - cleanup after a failure must not mask it
            error = root.fs.translate(exc, temp, "remove")
            if isinstance(error, NotFound):
                return  # never made, or already gone
            if not error.transient or attempt + 1 == _CLEANUP_ATTEMPTS:
                log.debug("could not remove %s after a failed write: %s", temp, exc)
                return


#: Tries to remove a failed write's temporary (each on another session where pooled).
_CLEANUP_ATTEMPTS = 3


def write_stream(
    root: PathRoot,
    rel: str,
    chunks: Iterable[bytes],
    progress: Progress | None,
    digest: str | None = None,
) -> None:
    """Write ``chunks`` to ``rel`` atomically, through the store's ``open_write``.

    The stream is hashed as it is written, and its digest recorded (unless the root's
    ``digests`` is off); a ``digest`` announced by the writer that differs is an
    :class:`IntegrityError` and nothing is stored.
    """
    hashed = Hashing(chunks)
    source = _Watched(hashed)

    def fill(temp: str) -> None:
        writer = root.fs.open_write(temp)
        try:
            feed(writer, source, progress)
            received = hashed.hexdigest()
            if digest is not None and received is not None and received != digest:
                raise mismatch(root.where(rel), digest, received, "the writer announced")
            writer.close()
        except BaseException:
            hashed.close()  # an abandoned stream's hashing thread ends too
            writer.abort()
            raise

    recorded = hashed.hexdigest if root.digests else lambda: None  # MLARTIFACTS_DIGESTS=false
    write_atomically(root, rel, fill, restartable=lambda: not source.started, digest=recorded)


class _Watched:
    """A one-time stream that tells whether any of it was taken (then a write cannot start over)."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._chunks = iter(chunks)
        self.started = False

    def __iter__(self) -> Iterator[bytes]:
        return self

    def __next__(self) -> bytes:
        self.started = True
        return next(self._chunks)


def feed(writer: Writer, chunks: Iterable[bytes], progress: Progress | None) -> None:
    """Write every chunk; an error of the chunks' own is raised as :class:`CallerError`."""
    iterator = iter(chunks)
    while True:
        try:
            chunk = next(iterator)
        except StopIteration:
            return
        except Exception as exc:
            raise CallerError() from exc
        writer.write(chunk)
        if progress is not None:
            progress(len(chunk))


def open_reader(root: PathRoot, rel: str, offset: int, length: int | None, op: str) -> Reader:
    """Open the file at ``rel``: a missing file or a directory is an error now, not on first read."""
    fs = root.fs
    path = root.path(rel)
    try:
        return fs.open_read(path, offset, length)
    except Exception as exc:
        raise not_a_file(root, rel, exc, op) from exc


def not_a_file(root: PathRoot, rel: str, exc: Exception, op: str) -> ArtifactError:
    """The error for a file that could not be opened: "is a directory" where that is why."""
    fs, where = root.fs, root.where(rel)
    error = fs.translate(exc, where, op)
    if not error.transient and not isinstance(exc, ArtifactError):
        info = fs.stat(root.path(rel))
        if info is not None and info.is_dir:
            return InvalidPath(f"{where} is a directory, not a file")
    return error


def read_blocks(reader: Reader, length: int | None, block_size: int) -> Iterator[bytes]:
    """The reader's bytes, up to ``length``, in blocks; closes it however the caller stops."""
    remaining = length
    try:
        while remaining is None or remaining > 0:
            block = reader.read(block_size if remaining is None else min(block_size, remaining))
            if not block:
                return
            if remaining is not None:
                remaining -= len(block)
            yield block
    finally:
        reader.close()
