"""The FTP primitives, on pooled control connections: MLST/LIST, STOR, RETR with REST, RNFR/RNTO."""

from __future__ import annotations

import contextlib
import ftplib
import posixpath
import socket
import ssl

from mlartifacts.errors import ArtifactError, NotFound, PermissionDenied
from mlartifacts.pathstore import Lease, LeasedWriter, PathInfo, PooledFileSystem

from ._client import Connection
from ._errors import reply_code, translate
from ._listing import Entry, list_directory, parse_mlst
from ._pool import make_pool
from ._uri import FtpRoot

__all__ = ["FtpFS"]

#: Operations for which a bare 550 reply means "not allowed" rather than "not there".
_CHANGES = {"write", "upload", "delete", "copy"}


def _info(entry: Entry) -> PathInfo:
    if entry.kind == "link":
        return PathInfo(entry.name, None, link=True)  # the toolkit follows it where it needs to
    return PathInfo(entry.name, entry.kind == "dir", entry.size, entry.modified)


class FtpFS(PooledFileSystem[Connection]):
    """One FTP server and login: its control connections pooled, shared by every root there."""

    block_size = 256 * 1024

    def __init__(self, config: FtpRoot) -> None:
        super().__init__(make_pool(config))
        self.config = config

    def translate(self, exc: Exception, where: str, op: str) -> ArtifactError:
        return translate(exc, where, PermissionDenied if op in _CHANGES else NotFound)

    def stat(self, path: str, follow: bool = True) -> PathInfo | None:
        with self.pool.session() as connection:
            entry = _stat(connection, path, follow)
        return None if entry is None else _info(entry)

    def listdir(self, path: str) -> list[PathInfo] | None:
        with self.pool.session() as connection:
            entries = list_directory(connection, path)
        return None if entries is None else [_info(entry) for entry in entries]

    def open_read(self, path: str, offset: int, length: int | None) -> _Reader:
        lease = self.lease()
        conn, skip = lease.begin(lambda connection: _retr(connection, path, offset))
        return _Reader(lease, conn, skip)

    def open_write(self, path: str) -> LeasedWriter[Connection]:
        lease = self.lease()
        conn = lease.begin(lambda connection: _stor(connection, path))
        return LeasedWriter(lease, conn.sendall, lambda complete: _finish(lease.session, conn, complete))

    def rename(self, src: str, dst: str) -> None:
        with self.pool.session() as connection:
            connection.ftp.rename(src, dst)

    def commands(self, session: Connection) -> Connection:
        return session


def _stat(connection: Connection, remote: str, follow: bool) -> Entry | None:
    """What is at ``remote`` (a final link resolved if ``follow``), or None."""
    ftp = connection.ftp
    if connection.mlst:
        try:
            entry = parse_mlst(ftp.sendcmd(f"MLST {remote}"))
        except ftplib.error_perm as exc:
            if reply_code(exc) in ("500", "502"):
                connection.mlst = False  # advertised but not there after all
                return _stat(connection, remote, follow)
            return None
        if entry is not None and (entry.kind != "link" or not follow):
            return entry
    connection.binary()  # SIZE is refused in ASCII mode by some servers (vsftpd)
    try:
        size = ftp.size(remote)
    except ftplib.error_perm:
        size = None
    if size is not None:
        return Entry(posixpath.basename(remote), "file", size)
    try:
        ftp.cwd(remote)
    except ftplib.error_perm:
        return None
    return Entry(posixpath.basename(remote), "dir")


def _retr(connection: Connection, remote: str, offset: int) -> tuple[socket.socket, int]:
    """Start a RETR at ``offset``: a missing file fails now, not on the first read.

    Returns the data connection and how many leading bytes to skip: 0 with REST,
    ``offset`` on the rare server without it (the bytes before it are read and dropped).
    """
    connection.binary()
    if offset and not connection.rest:
        return connection.ftp.transfercmd(f"RETR {remote}"), offset
    return connection.ftp.transfercmd(f"RETR {remote}", rest=offset or None), 0


def _stor(connection: Connection, remote: str) -> socket.socket:
    connection.binary()
    return connection.ftp.transfercmd(f"STOR {remote}")


def _close_data(conn: socket.socket, graceful: bool) -> None:
    if graceful and isinstance(conn, ssl.SSLSocket):
        with contextlib.suppress(OSError):  # the server's reply says whether all arrived
            conn.unwrap()  # a clean TLS close, or servers take an upload as truncated
    conn.close()


def _finish(connection: Connection, conn: socket.socket, complete: bool) -> None:
    """Close the data connection and read the reply that ends the transfer, in step."""
    _close_data(conn, graceful=complete)
    if complete:
        connection.ftp.voidresp()
    else:
        # Stopped before the end: the server answers the closed data connection with
        # one reply, 426 (or 226 if it had it all); read it to stay in step.
        with contextlib.suppress(ftplib.Error):
            connection.ftp.voidresp()


class _Reader:
    """The bytes of a RETR after ``skip`` leading ones."""

    def __init__(self, lease: Lease[Connection], conn: socket.socket, skip: int) -> None:
        self.lease, self.conn, self.skip = lease, conn, skip
        self.complete = self.failed = False

    def read(self, size: int) -> bytes:
        try:
            while True:
                block = self.conn.recv(size + self.skip)
                if not block:
                    self.complete = True
                    return b""
                if self.skip:
                    block, self.skip = block[self.skip :], max(0, self.skip - len(block))
                if block:
                    return block
        except BaseException:
            self.failed = True
            raise

    def close(self) -> None:
        if self.lease.ended:
            return
        if self.failed:
            _close_data(self.conn, graceful=False)
            self.lease.end(reuse=False)
            return
        try:
            _finish(self.lease.session, self.conn, self.complete)
        except BaseException as exc:
            self.lease.end(reuse=self.lease.pool.reusable(exc))
            raise
        self.lease.end(reuse=True)
