"""Local disks and NFS mounts: plain paths (relative or absolute) and ``file:`` URIs.

The path-store toolkit makes writes atomic (a temporary file in the target
directory, renamed over the target), so a reader sees the old file or the new one,
never a partial one. Here: every write is fsynced before it is renamed
(``MLARTIFACTS_NFS_FSYNC``, default true), files are copied in the kernel
(``copy_file_range``) where the filesystem allows it, and no path may leave the
store root, symbolic links included.
"""

from __future__ import annotations

import contextlib
import errno
import os
import queue
import shutil
import stat as stat_module
import threading
from typing import BinaryIO
from urllib.parse import unquote, urlsplit

from mlartifacts import Capabilities, Settings
from mlartifacts.config import env_bool
from mlartifacts.errors import InvalidPath, InvalidUri, PreconditionFailed
from mlartifacts.hookspecs import Progress
from mlartifacts.pathstore import PathFileSystem, PathInfo, PathStorePlugin, shared

__all__ = ["LocalFS", "plugin"]

_COPY_CHUNK = 8 * 1024 * 1024
_WRITEBACK = 32 * 1024 * 1024  # start writing back to disk every this many bytes of a stream


#: A replaced file at least this large is freed off the caller's thread (see :func:`_replace`).
_FREE_BESIDE = 16 * 1024 * 1024
_closing: queue.SimpleQueue[int] = queue.SimpleQueue()
_closer_lock = threading.Lock()
_closer: threading.Thread | None = None


def _replace(src: str, dst: str) -> None:
    """``os.replace``, but a large file it replaces is freed on a background thread.

    When the rename drops the old file's last link, the kernel frees its blocks inside
    the rename (0.2-0.6 s per GiB here), in the middle of the writer's request. Holding
    the old file open across the rename moves that work to its last close.
    """
    held = _hold(dst)
    try:
        os.replace(src, dst)
    finally:
        if held is not None:
            _close_beside(held)


def _hold(path: str) -> int | None:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
    except OSError:
        return None  # nothing there (the usual case), a link, or not ours to open
    try:
        if os.fstat(fd).st_size >= _FREE_BESIDE:
            return fd
    except OSError:
        pass
    os.close(fd)  # a small file costs nothing to free
    return None


def _close_beside(fd: int) -> None:
    global _closer
    with _closer_lock:
        if _closer is None or not _closer.is_alive():
            _closer = threading.Thread(target=_close_forever, name="mlartifacts-nfs-free", daemon=True)
            _closer.start()
    _closing.put(fd)


def _close_forever() -> None:
    while True:
        fd = _closing.get()
        with contextlib.suppress(OSError):
            os.close(fd)


def _info(name: str, st: os.stat_result, link: bool = False) -> PathInfo:
    is_dir = stat_module.S_ISDIR(st.st_mode)
    return PathInfo(name, is_dir, None if is_dir else st.st_size, st.st_mtime, link)


class LocalFS(PathFileSystem):
    """The local filesystem; ``fsync`` makes every write durable before it becomes visible."""

    pathmod = os.path

    def __init__(self, fsync: bool) -> None:
        self.fsync = fsync
        self._real_roots: dict[str, str] = {}

    def join(self, base: str, rel: str) -> str:
        """The path of ``rel`` below ``base``, refused if it resolves outside ``base``."""
        target = os.path.join(base, *rel.split("/")) if rel else base
        if not rel:
            return target
        real = os.path.realpath(target)
        # The root's own resolution is remembered: if the root has since become a link
        # elsewhere, the check fails against the old one and is made again afresh, so
        # a stale answer can refuse a path once but never let one through.
        if not _inside(real, self._real_root(base)) and not _inside(real, self._real_root(base, fresh=True)):
            raise InvalidPath(f"{rel!r} resolves outside the store root (through a symbolic link)")
        return target

    def _real_root(self, base: str, fresh: bool = False) -> str:
        real = None if fresh else self._real_roots.get(base)
        if real is None:
            real = self._real_roots[base] = os.path.realpath(base)
        return real

    def stat(self, path: str, follow: bool = True) -> PathInfo | None:
        try:
            st = os.stat(path, follow_symlinks=follow)
        except (FileNotFoundError, NotADirectoryError):
            return None
        return _info(os.path.basename(path), st, stat_module.S_ISLNK(st.st_mode))

    def listdir(self, path: str) -> list[PathInfo] | None:
        try:
            with os.scandir(path) as entries:
                return [self._entry(entry) for entry in entries]
        except (FileNotFoundError, NotADirectoryError):
            return None

    @staticmethod
    def _entry(entry: os.DirEntry[str]) -> PathInfo:
        link = entry.is_symlink()
        try:
            return _info(entry.name, entry.stat(), link)
        except FileNotFoundError:  # a broken link, or removed meanwhile: the toolkit looks again
            return PathInfo(entry.name, None, link=link)

    def open_read(self, path: str, offset: int, length: int | None) -> BinaryIO:
        src = open(path, "rb")  # noqa: SIM115 - the caller closes it
        src.seek(offset)
        return src

    def open_write(self, path: str) -> _LocalWriter:
        return _LocalWriter(_create(path), self.fsync)

    rename = staticmethod(_replace)
    remove = staticmethod(os.unlink)
    rmdir = staticmethod(os.rmdir)
    mkdir = staticmethod(os.mkdir)

    @staticmethod
    def rmtree(path: str) -> None:
        """``rm -r``: removes links inside, never what they point to."""
        try:
            shutil.rmtree(path)
        except OSError as exc:
            if exc.errno is None:
                # shutil's own check ("Cannot call rmtree on a symbolic link"): the directory
                # was replaced while it was removed (a writer made it again). The toolkit
                # walks the tree again on this error.
                raise PreconditionFailed(f"{path} changed while it was deleted") from exc
            raise

    def copy(self, src: str, dst: str) -> None:
        with open(src, "rb") as source:
            self._fill(dst, source, None)

    def get_xattr(self, path: str, name: str) -> bytes | None:
        """A file's extended attribute (where the toolkit keeps its digest); None without one."""
        try:
            return os.getxattr(path, name)
        except OSError as exc:
            if exc.errno == errno.ENODATA:
                return None
            if exc.errno in (errno.ENOTSUP, errno.EOPNOTSUPP):
                raise NotImplementedError(f"no extended attributes here: {exc.strerror}") from exc
            raise

    def set_xattr(self, path: str, name: str, value: bytes) -> None:
        """Set a file's extended attribute; NotImplementedError where the filesystem has none."""
        try:
            os.setxattr(path, name, value)
        except OSError as exc:
            if exc.errno in (errno.ENOTSUP, errno.EOPNOTSUPP, errno.EPERM):
                raise NotImplementedError(f"no extended attributes here: {exc.strerror}") from exc
            raise

    def put_file(self, local_file: str, path: str, progress: Progress) -> None:
        with open(local_file, "rb") as source:
            self._fill(path, source, progress)

    def get_file(self, path: str, local_file: str, progress: Progress) -> None:
        with open(path, "rb") as src, open(local_file, "wb") as dst:
            _copy(src, dst, progress)

    def _fill(self, path: str, source: BinaryIO, progress: Progress | None) -> None:
        writer = self.open_write(path)
        try:
            _copy(source, writer.file, progress)
            writer.close()
        except BaseException:
            writer.abort()
            raise


def _inside(real: str, root: str) -> bool:
    return real == root or real.startswith(root.rstrip(os.sep) + os.sep)


def _create(path: str) -> BinaryIO:
    """A new, empty file (never through a link), created with the usual permissions."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC | os.O_NOFOLLOW
    return open(os.open(path, flags, 0o666), "wb", buffering=0)  # the umask applies, as for any file


class _LocalWriter:
    """A temporary being written: unbuffered (callers write whole blocks), fsynced on close."""

    def __init__(self, file: BinaryIO, fsync: bool) -> None:
        self.file, self.fsync = file, fsync
        self.written = self.started = 0

    def write(self, data: bytes) -> None:
        _write_all(self.file, data)
        self.written += len(data)
        if self.fsync and self.written - self.started >= _WRITEBACK:
            _start_writeback(self.file.fileno(), self.started, self.written - self.started)
            self.started = self.written

    def close(self) -> None:
        with self.file:
            if self.fsync:
                os.fsync(self.file.fileno())

    def abort(self) -> None:
        self.file.close()


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
    for block in iter(lambda: src.read(1024 * 1024), b""):
        _write_all(dst, block)
        if progress is not None:
            progress(len(block))


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


def resolve(uri: str, settings: Settings) -> tuple[LocalFS, str]:
    """A plain path or a ``file:`` URI naming a local path."""
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
    fsync = env_bool("MLARTIFACTS_NFS_FSYNC", True)
    return shared(("nfs", fsync), lambda: LocalFS(fsync)), os.path.abspath(path)


plugin = PathStorePlugin(
    schemes=["", "file"],
    resolve=resolve,
    capabilities=Capabilities(ranged_read=True, server_side_copy=True, single_stream=True),
)
