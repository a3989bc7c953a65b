"""Local disks and NFS mounts: plain paths (relative or absolute) and ``file:`` URIs.

Writes are atomic: bytes go to a temporary file in the target directory, which is
fsynced and then renamed over the target, so a reader sees the old file or the
new one, never a partial one. No path may leave the store root, symbolic links
included. Concurrent writers of different files never share a temporary.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import shutil
import stat as stat_module
import uuid
from dataclasses import dataclass
from typing import BinaryIO, Callable, Iterable, Iterator, Sequence
from urllib.parse import unquote, urlsplit

from mlartifacts import Capabilities, FileInfo, hookimpl
from mlartifacts.config import env_bool
from mlartifacts.errors import InvalidPath, InvalidUri, NotFound
from mlartifacts.hookspecs import Progress
from mlartifacts.paths import TEMP_PREFIX

__all__ = ["LocalRoot"]

log = logging.getLogger("mlartifacts.nfs")

_CHUNK = 1024 * 1024
_COPY_CHUNK = 8 * 1024 * 1024
_WRITEBACK = 32 * 1024 * 1024  # start writing back to disk every this many bytes of a stream


@dataclass(frozen=True)
class LocalRoot:
    """An absolute directory (or file) path on a local or NFS-mounted filesystem.

    ``fsync`` (``MLARTIFACTS_NFS_FSYNC``, default true) makes every write durable
    before it becomes visible; turning it off trades that for speed.
    """

    path: str
    fsync: bool = True

    def target(self, path: str) -> str:
        """The filesystem path of ``path``, refused if it resolves outside the root."""
        target = os.path.join(self.path, *path.split("/")) if path else self.path
        if not path:
            return target
        real = os.path.realpath(target)
        # The root's own resolution is remembered: if the root has since become a link
        # elsewhere, the check fails against the old one and is made again afresh, so
        # a stale answer can refuse a path once but never let one through.
        if not _inside(real, _real_root(self.path)) and not _inside(real, _real_root(self.path, fresh=True)):
            raise InvalidPath(
                f"{path!r} resolves to {real}, outside the store root {self.path} (through a symbolic link)"
            )
        return target


_REAL_ROOTS: dict[str, str] = {}


def _real_root(path: str, fresh: bool = False) -> str:
    real = None if fresh else _REAL_ROOTS.get(path)
    if real is None:
        real = _REAL_ROOTS[path] = os.path.realpath(path)
    return real


def _inside(real: str, root: str) -> bool:
    return real == root or real.startswith(root.rstrip(os.sep) + os.sep)


@hookimpl
def schemes() -> Sequence[str]:
    return ["", "file"]


@hookimpl
def resolve_uri(uri: str) -> LocalRoot:
    path = uri
    if uri[:5].lower() == "file:":
        parts = urlsplit(uri)
        if parts.netloc not in ("", "localhost"):
            raise InvalidUri(
                f"{uri!r} names host {parts.netloc!r}: file URIs must be local paths "
                "(mount the share and use its path)"
            )
        if parts.query or parts.fragment:
            raise InvalidUri(f"{uri!r}: file URIs take no query or fragment")
        path = unquote(parts.path)
    if not path or "\0" in path:
        raise InvalidUri(f"{uri!r} is not a usable path")
    return LocalRoot(os.path.abspath(path), fsync=env_bool("MLARTIFACTS_NFS_FSYNC", True))


@hookimpl
def capabilities() -> Capabilities:
    return Capabilities(ranged_read=True, server_side_copy=True, single_stream=True)


@hookimpl
def stat(root: LocalRoot, path: str) -> FileInfo:
    target = root.target(path)
    try:
        st = os.stat(target)
    except (FileNotFoundError, NotADirectoryError):
        raise NotFound(f"no such file or directory: {target}") from None
    if stat_module.S_ISDIR(st.st_mode):
        return FileInfo(path, True, modified=st.st_mtime)
    return FileInfo(path, False, st.st_size, modified=st.st_mtime)


def _entry(root: LocalRoot, rel: str, entry: os.DirEntry[str]) -> FileInfo | None:
    if entry.name.startswith(TEMP_PREFIX):
        return None
    try:
        if entry.is_symlink():
            root.target(rel)  # refuses links that leave the root
        st = entry.stat()
    except (InvalidPath, FileNotFoundError) as exc:
        log.warning("skipping %s: %s", entry.path, exc)
        return None
    if stat_module.S_ISDIR(st.st_mode):
        return FileInfo(rel, True, modified=st.st_mtime)
    return FileInfo(rel, False, st.st_size, modified=st.st_mtime)


def _scan(directory: str) -> list[os.DirEntry[str]]:
    try:
        with os.scandir(directory) as entries:
            return sorted(entries, key=lambda e: e.name)
    except (FileNotFoundError, NotADirectoryError):
        return []


@hookimpl(specname="list")
def list_entries(root: LocalRoot, path: str, recursive: bool) -> Iterator[FileInfo]:
    pending = [path]
    while pending:
        current = pending.pop()
        for entry in _scan(root.target(current)):
            rel = f"{current}/{entry.name}" if current else entry.name
            info = _entry(root, rel, entry)
            if info is None:
                continue
            if not recursive:
                yield info
            elif info.is_dir:
                if not entry.is_symlink():  # as os.walk: linked directories are not descended
                    pending.append(rel)
            else:
                yield info


def _create_temporary(directory: str) -> tuple[int, str]:
    """A new, empty temporary file in ``directory`` (created with the usual permissions)."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC | os.O_NOFOLLOW
    while True:
        tmp = os.path.join(directory, f"{TEMP_PREFIX}{uuid.uuid4().hex}")
        with contextlib.suppress(FileExistsError):  # 128 random bits: practically never
            return os.open(tmp, flags, 0o666), tmp  # the umask applies, as for any new file


def _temporary_for(root: LocalRoot, path: str) -> tuple[str, int, str]:
    """The target of a write and a temporary beside it, parent directories created inside the root."""
    target = root.target(path)
    try:
        return (target, *_create_temporary(os.path.dirname(target)))
    except FileNotFoundError:  # the directory is new: create it (only then: it costs)
        pass
    except NotADirectoryError:
        raise InvalidPath(f"cannot write {path!r}: a file is in the way of its directory") from None
    try:
        os.makedirs(os.path.dirname(target), exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise InvalidPath(f"cannot write {path!r}: a file is in the way of its directory") from None
    except OSError as exc:
        raise InvalidPath(f"cannot write {path!r}: {exc.strerror}") from None
    target = root.target(path)  # again: a link may have appeared while creating directories
    return (target, *_create_temporary(os.path.dirname(target)))


def _atomic_write(root: LocalRoot, path: str, fill: Callable[[BinaryIO], None]) -> None:
    target, fd, tmp = _temporary_for(root, path)
    try:
        with open(fd, "wb", buffering=0) as f:  # unbuffered: callers write whole blocks
            fill(f)
            if root.fsync:
                os.fsync(fd)
        try:
            os.replace(tmp, target)
        except IsADirectoryError:
            raise InvalidPath(f"cannot write {path or root.path!r}: it is a directory") from None
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _copy(src: BinaryIO, dst: BinaryIO, progress: Progress | None) -> None:
    """Copy an open file into another, in kernel space where the filesystem allows it."""
    src_fd, dst_fd = src.fileno(), dst.fileno()
    try:
        while True:
            sent = os.copy_file_range(src_fd, dst_fd, _COPY_CHUNK)
            if not sent:
                return
            if progress is not None:
                progress(sent)
    except OSError as exc:
        if exc.errno not in (errno.EXDEV, errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP, errno.EPERM):
            raise
    # copy_file_range is unavailable here (or across these filesystems): plain copy
    # from wherever it stopped.
    for block in iter(lambda: src.read(_CHUNK), b""):
        _write_all(dst, block)
        if progress is not None:
            progress(len(block))


@hookimpl
def upload(root: LocalRoot, path: str, local_file: str, progress: Progress) -> None:
    with open(local_file, "rb") as src:
        _atomic_write(root, path, lambda dst: _copy(src, dst, progress))


def _write_all(dst: BinaryIO, data: bytes) -> None:
    view = memoryview(data)
    while view:  # an unbuffered write may take less than it was given
        view = view[dst.write(view) :]


def _start_writeback(fd: int, offset: int, length: int) -> None:
    """Have the kernel start writing a range to disk now, without waiting for it.

    On Linux, POSIX_FADV_DONTNEED starts asynchronous writeback of dirty pages (and
    drops only clean ones), so the fsync that ends a long write has little left to do:
    the disk works while the rest of the stream arrives.
    """
    if hasattr(os, "posix_fadvise"):
        with contextlib.suppress(OSError):
            os.posix_fadvise(fd, offset, length, os.POSIX_FADV_DONTNEED)


@hookimpl
def write(root: LocalRoot, path: str, chunks: Iterable[bytes]) -> None:
    def fill(dst: BinaryIO) -> None:
        written = started = 0
        for chunk in chunks:
            _write_all(dst, chunk)
            written += len(chunk)
            if root.fsync and written - started >= _WRITEBACK:
                _start_writeback(dst.fileno(), started, written - started)
                started = written

    _atomic_write(root, path, fill)


def _open_file(root: LocalRoot, path: str) -> BinaryIO:
    target = root.target(path)
    try:
        return open(target, "rb")
    except (FileNotFoundError, NotADirectoryError):
        raise NotFound(f"no such file: {target}") from None
    except IsADirectoryError:
        raise InvalidPath(f"{target} is a directory, not a file") from None


@hookimpl
def download(root: LocalRoot, path: str, local_file: str, progress: Progress) -> None:
    with _open_file(root, path) as src, open(local_file, "wb") as dst:
        _copy(src, dst, progress)


@hookimpl
def read(root: LocalRoot, path: str, offset: int, length: int | None) -> Iterator[bytes]:
    src = _open_file(root, path)  # opened now, so a missing file fails at the call
    return _chunks(src, offset, length)


def _chunks(src: BinaryIO, offset: int, length: int | None) -> Iterator[bytes]:
    with src:
        src.seek(offset)
        remaining = length
        while remaining is None or remaining > 0:
            block = src.read(_CHUNK if remaining is None else min(_CHUNK, remaining))
            if not block:
                return
            if remaining is not None:
                remaining -= len(block)
            yield block


@hookimpl
def delete(root: LocalRoot, path: str) -> None:
    target = root.target(path)
    if os.path.isdir(target) and not os.path.islink(target):
        shutil.rmtree(target)  # removes links inside, never what they point to
    elif os.path.lexists(target):
        os.unlink(target)
    else:
        raise NotFound(f"no such file or directory: {target}")


@hookimpl
def copy(root: LocalRoot, path: str, dst_root: LocalRoot, dst_path: str) -> None:
    with _open_file(root, path) as src:
        _atomic_write(dst_root, dst_path, lambda dst: _copy(src, dst, None))
