"""FTP and FTPS servers (``ftp://[user[:password]@]host[:port]/path``, ``ftps://...``).

Standard library only (ftplib). Logged-in connections are pooled per server and
login, never one login per file; passive mode by default; ``ftps://`` is explicit
TLS with protected data connections. Listings use MLSD where the server has it
and parse LIST where it does not (vsftpd). Uploads go to a temporary name in the
target directory and are renamed over the target (RNFR/RNTO), so nothing partial
is ever visible. Ranged reads use REST.
"""

from __future__ import annotations

import posixpath
import socket
from typing import Iterable, Iterator, Sequence

from mlartifacts import Capabilities, FileInfo, hookimpl
from mlartifacts.errors import InvalidPath, NotFound, PermissionDenied, TransientError
from mlartifacts.hookspecs import Progress
from mlartifacts.pool import SessionPool

from . import _ops
from ._client import Connection
from ._errors import ftp_errors
from ._pool import pool_for, reusable
from ._uri import FtpRoot, parse_uri

__all__ = ["FtpRoot"]


@hookimpl
def schemes() -> Sequence[str]:
    return ["ftp", "ftps"]


@hookimpl
def resolve_uri(uri: str) -> FtpRoot:
    return parse_uri(uri)


@hookimpl
def capabilities() -> Capabilities:
    # Reads start at any offset with REST (RFC 3659: vsftpd, ProFTPD, pure-ftpd, IIS,
    # pyftpdlib...; a server without it is read from the start and the head dropped).
    # Downloads stay one stream: parallel ranges would each need a data connection
    # and an aborted transfer.
    return Capabilities(ranged_read=True, single_stream=True)


def _where(root: FtpRoot, path: str) -> str:
    return f"{root.display.rstrip('/')}/{path}" if path else root.display


@hookimpl
def stat(root: FtpRoot, path: str) -> FileInfo:
    remote = root.remote(path)
    with ftp_errors(_where(root, path)), pool_for(root).session() as connection:
        entry = _ops.stat_entry(connection, remote)
    if entry is None:
        raise NotFound(f"no such file or directory: {_where(root, path)}")
    if entry.kind == "dir":
        return FileInfo(path, True, modified=entry.modified)
    return FileInfo(path, False, entry.size, modified=entry.modified)


@hookimpl(specname="list")
def list_entries(root: FtpRoot, path: str, recursive: bool) -> list[FileInfo]:
    # Collected while the connection is held, then handed over (see the sftp plugin).
    remote = root.remote(path)
    with ftp_errors(_where(root, path)), pool_for(root).session() as connection:
        if recursive:
            return list(_ops.walk_files(connection, remote, path))
        return [info for info, _ in _ops.children(connection, remote, path)]


@hookimpl
def upload(root: FtpRoot, path: str, local_file: str, progress: Progress) -> None:
    with open(local_file, "rb") as src:
        _write(root, path, iter(lambda: src.read(_ops.BLOCK), b""), progress)


@hookimpl
def write(root: FtpRoot, path: str, chunks: Iterable[bytes]) -> None:
    _write(root, path, chunks, None)


def _write(root: FtpRoot, path: str, chunks: Iterable[bytes], progress: Progress | None) -> None:
    if not path and root.path == "/":
        raise InvalidPath(f"{root.display}: cannot write over the server's root directory")
    pool = pool_for(root)
    target = root.remote(path)
    temp = _ops.temporary_for(target)
    try:
        with ftp_errors(_where(root, path), on_550=PermissionDenied), pool.session() as connection:
            _ops.store_atomically(connection, target, temp, chunks, progress)
    except TransientError:
        _clean_up(pool, temp)  # the connection broke: remove the temporary over a new one
        raise


def _clean_up(pool: SessionPool[Connection], temp: str) -> None:
    try:
        with pool.session() as connection:
            _ops.remove_quietly(connection, temp)
    except Exception:  # noqa: BLE001 - best effort: the write's own error is what matters
        pass


@hookimpl
def download(root: FtpRoot, path: str, local_file: str, progress: Progress) -> None:
    remote = root.remote(path)
    with ftp_errors(_where(root, path)), pool_for(root).session() as connection:
        conn, _ = _open(connection, remote, 0, _where(root, path))
        with open(local_file, "wb") as dst:
            _ops.copy_to_local(connection, conn, dst, progress)


def _open(connection: Connection, remote: str, offset: int, where: str) -> tuple[socket.socket, int]:
    try:
        return _ops.open_retr(connection, remote, offset)
    except Exception:
        # A failed RETR: say "is a directory" rather than "not found" where that is the case.
        entry = _ops.stat_entry(connection, remote)
        if entry is not None and entry.kind == "dir":
            raise InvalidPath(f"{where} is a directory, not a file") from None
        raise


@hookimpl
def read(root: FtpRoot, path: str, offset: int, length: int | None) -> Iterator[bytes]:
    pool = pool_for(root)
    where = _where(root, path)
    with ftp_errors(where):
        connection = pool.acquire()
        try:
            conn, skip = _open(connection, root.remote(path), offset, where)
        except BaseException as exc:
            (pool.release if reusable(exc) else pool.discard)(connection)
            raise
    # The transfer has started (a missing file failed above); the connection is held
    # until the caller closes the generator.
    return _reading(pool, connection, conn, skip, length, where)


def _reading(
    pool: SessionPool[Connection],
    connection: Connection,
    conn: socket.socket,
    skip: int,
    length: int | None,
    where: str,
) -> Iterator[bytes]:
    healthy = False
    try:
        with ftp_errors(where):
            yield from _ops.receive(connection, conn, length, skip)
        healthy = True
    except GeneratorExit:
        healthy = True  # closed early by the caller: receive() ended the transfer in step
        raise
    finally:
        (pool.release if healthy else pool.discard)(connection)


@hookimpl
def delete(root: FtpRoot, path: str) -> None:
    remote = root.remote(path)
    with ftp_errors(_where(root, path), on_550=PermissionDenied), pool_for(root).session() as connection:
        entry = _ops.stat_entry(connection, remote)
        if entry is None:
            raise NotFound(f"no such file or directory: {_where(root, path)}")
        if entry.kind == "dir":
            _ops.remove_tree(connection, remote, keep_root=remote == "/")
        else:
            connection.ftp.delete(remote)
            connection.known_dirs.discard(posixpath.dirname(remote))
