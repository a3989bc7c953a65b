"""The SFTP primitives: one pooled channel per call, pipelined writes, reads with read-ahead."""

from __future__ import annotations

import errno
import logging
import posixpath
import stat as stat_module
from typing import TYPE_CHECKING, Any

from mlartifacts.errors import ArtifactError
from mlartifacts.pathstore import Lease, LeasedWriter, PathInfo, PooledFileSystem

from ._errors import connection_lost, translate
from ._pool import make_pool

if TYPE_CHECKING:
    import paramiko

    from ._pool import Session
    from ._uri import SftpRoot

__all__ = ["SftpFS"]

log = logging.getLogger("mlartifacts.sftp")


def _info(name: str, attrs: Any) -> PathInfo:
    mode = attrs.st_mode or 0
    if stat_module.S_ISLNK(mode):
        return PathInfo(name, None, link=True)  # the toolkit follows it where it needs to
    is_dir = stat_module.S_ISDIR(mode)
    return PathInfo(name, is_dir, None if is_dir else attrs.st_size, attrs.st_mtime)


def _generic_failure(exc: OSError) -> bool:
    # OpenSSH answers opendir() of a plain file with SSH_FX_FAILURE ("Failure").
    return exc.errno is None and str(exc) in ("Failure", "[Errno None] Failure")


class SftpFS(PooledFileSystem["Session"]):
    """One SFTP server and login: its channels pooled, shared by every root there."""

    def __init__(self, config: SftpRoot) -> None:
        super().__init__(make_pool(config))
        self.config = config
        self._home: str | None = None

    def join(self, base: str, rel: str) -> str:
        if not base.startswith("/"):  # sftp://host/~/path: below the login directory
            if self._home is None:
                with self.pool.session() as session:
                    self._home = session.sftp.normalize(".")
            base = posixpath.join(self._home, base).rstrip("/") or "/"
        return posixpath.join(base, rel) if rel else base

    def translate(self, exc: Exception, where: str, op: str) -> ArtifactError:
        return translate(exc, where)

    def stat(self, path: str, follow: bool = True) -> PathInfo | None:
        with self.pool.session() as session:
            try:
                attrs = session.sftp.stat(path) if follow else session.sftp.lstat(path)
            except FileNotFoundError:
                return None
        return _info(posixpath.basename(path), attrs)

    def listdir(self, path: str) -> list[PathInfo] | None:
        with self.pool.session() as session:
            try:
                listing = session.sftp.listdir_attr(path)
            except OSError as exc:
                if exc.errno in (errno.ENOENT, errno.ENOTDIR) or _generic_failure(exc):
                    return None
                raise
        return [_info(attrs.filename, attrs) for attrs in listing]

    def open_read(self, path: str, offset: int, length: int | None) -> _Reader:
        lease = self.lease()
        handle, size = lease.begin(lambda session: _open(session, path))
        return _Reader(lease, handle, size, offset, length)

    def open_write(self, path: str) -> LeasedWriter[Session]:
        lease = self.lease()
        handle = lease.begin(lambda session: session.sftp.open(path, "wb"))
        handle.MAX_REQUEST_SIZE = lease.session.request_size
        handle.set_pipelined(True)
        # Closing waits for every write's acknowledgement: the bytes are all there after it.
        return LeasedWriter(lease, handle.write, lambda complete: handle.close())

    def rename(self, src: str, dst: str) -> None:
        with self.pool.session() as session:
            connection = session.connection
            if connection.posix_rename:
                try:
                    session.sftp.posix_rename(src, dst)  # atomic replace (posix-rename@openssh.com)
                    return
                except OSError as exc:
                    if connection_lost(exc) or exc.errno is not None:
                        raise
                    # "Operation unsupported": the server lacks the extension.
                    log.info("%s has no posix-rename; replacing files in two steps", session.sftp)
                    connection.posix_rename = False
            session.sftp.rename(src, dst)  # SFTP v3: refuses to replace (the toolkit then removes first)

    def commands(self, session: Session) -> paramiko.SFTPClient:
        return session.sftp


def _open(session: Session, path: str) -> tuple[paramiko.SFTPFile, int]:
    handle = session.sftp.open(path, "rb")
    try:
        attrs = handle.stat()
        if stat_module.S_ISDIR(attrs.st_mode or 0):
            raise IsADirectoryError(errno.EISDIR, "is a directory, not a file")
    except BaseException:
        handle.close()
        raise
    # Use the request size the server allows (paramiko reads it from the instance).
    handle.MAX_REQUEST_SIZE = session.request_size
    return handle, attrs.st_size or 0


class _Reader:
    """``[offset, offset+length)`` of a file, with every request in flight at once (read-ahead)."""

    def __init__(
        self, lease: Lease[Session], handle: paramiko.SFTPFile, size: int, offset: int, length: int | None
    ) -> None:
        self.lease, self.handle = lease, handle
        self.position = offset
        self.end = size if length is None else min(size, offset + length)
        if self.end - offset > handle.MAX_REQUEST_SIZE:
            handle.seek(offset)
            # Never prefetch past the end: paramiko would keep the EOF error for the next read.
            handle.prefetch(self.end)
        elif offset < self.end:
            handle.seek(offset)  # one request holds it all: read-ahead would only cost time

    def read(self, size: int) -> bytes:
        if self.position >= self.end:
            return b""
        block = self.handle.read(min(size, self.end - self.position))
        if not block:
            raise EOFError(f"the file ended at byte {self.position} of {self.end}")
        self.position += len(block)
        return block

    def close(self) -> None:
        if self.lease.ended:
            return
        if self.position < self.end:
            # Stopped early or failed: read-ahead replies may still be on their way, so
            # the channel is closed rather than reused.
            self.lease.end(reuse=False)
            return
        try:
            self.handle.close()
        except BaseException:
            self.lease.end(reuse=False)
            raise
        self.lease.end(reuse=True)
