"""What the hooks do on one control connection: stat, walks, atomic STOR, ranged RETR, rm -r."""

from __future__ import annotations

import contextlib
import ftplib
import logging
import posixpath
import socket
import ssl
import uuid
from typing import Any, BinaryIO, Callable, Iterable, Iterator

from mlartifacts import FileInfo
from mlartifacts.errors import InvalidPath
from mlartifacts.paths import TEMP_PREFIX

from ._client import Connection
from ._errors import connection_lost, reply_code
from ._listing import Entry, list_directory, parse_mlst

__all__ = [
    "children",
    "open_retr",
    "receive",
    "remove_quietly",
    "remove_tree",
    "stat_entry",
    "store_atomically",
    "temporary_for",
    "walk_files",
]

log = logging.getLogger("mlartifacts.ftp")

BLOCK = 256 * 1024


def stat_entry(connection: Connection, remote: str) -> Entry | None:
    """What is at ``remote`` (links resolved), or None."""
    ftp = connection.ftp
    if connection.mlst:
        try:
            entry = parse_mlst(ftp.sendcmd(f"MLST {remote}"))
        except ftplib.error_perm as exc:
            if reply_code(exc) in ("500", "502"):
                connection.mlst = False
                return stat_entry(connection, remote)
            return None
        if entry is not None and entry.kind != "link":
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


def _info(rel: str, entry: Entry) -> FileInfo:
    if entry.kind == "dir":
        return FileInfo(rel, True, modified=entry.modified)
    return FileInfo(rel, False, entry.size, modified=entry.modified)


def children(connection: Connection, remote: str, rel: str) -> list[tuple[FileInfo, bool]]:
    """The children of a directory ([] if missing or a file), each with whether it is a link."""
    found = []
    for entry in list_directory(connection, remote) or []:
        if entry.name.startswith(TEMP_PREFIX):
            continue
        child = f"{rel}/{entry.name}" if rel else entry.name
        link = entry.kind == "link"
        if link or (entry.kind == "file" and entry.size is None):
            resolved = stat_entry(connection, posixpath.join(remote, entry.name))
            if resolved is None:
                log.warning("skipping %s: a broken link", posixpath.join(remote, entry.name))
                continue
            entry = Entry(entry.name, resolved.kind, resolved.size, resolved.modified)
        found.append((_info(child, entry), link))
    return found


def walk_files(connection: Connection, remote: str, rel: str) -> Iterator[FileInfo]:
    """Every file below a directory (links to directories are not descended)."""
    pending = [(remote, rel)]
    while pending:
        directory, prefix = pending.pop()
        for info, link in children(connection, directory, prefix):
            if not info.is_dir:
                yield info
            elif not link:
                pending.append((posixpath.join(directory, info.path.rsplit("/", 1)[-1]), info.path))


def make_dirs(connection: Connection, directory: str) -> None:
    """``mkdir -p`` on the server (as os.makedirs: one MKD when the parent exists)."""
    if directory in ("/", "") or directory in connection.known_dirs:
        return
    ftp = connection.ftp
    try:
        ftp.mkd(directory)
    except ftplib.error_perm:
        # It exists, its parent is missing, or it may not be made: tell which.
        if not _is_dir(connection, directory):
            make_dirs(connection, posixpath.dirname(directory))
            try:
                ftp.mkd(directory)
            except ftplib.error_perm:
                if not _is_dir(connection, directory):
                    return  # not allowed: the STOR that follows says so
    connection.known_dirs.add(directory)


def _is_dir(connection: Connection, path: str) -> bool:
    try:
        connection.ftp.cwd(path)
    except ftplib.error_perm:
        return False
    return True


def temporary_for(target: str) -> str:
    return posixpath.join(posixpath.dirname(target), f"{TEMP_PREFIX}{uuid.uuid4().hex}")


class StreamFailed(Exception):
    """The caller's chunks raised: carries that error out past the transfer's cleanup."""


def _close_data(conn: socket.socket, graceful: bool) -> None:
    if graceful and isinstance(conn, ssl.SSLSocket):
        with contextlib.suppress(OSError):  # the server's reply says whether all arrived
            conn.unwrap()  # a clean TLS close, or servers take an upload as truncated
    conn.close()


def _open_stor(connection: Connection, temp: str, directory: str) -> socket.socket:
    connection.binary()
    try:
        return connection.ftp.transfercmd(f"STOR {temp}")
    except ftplib.error_perm:
        if directory not in connection.known_dirs:
            raise
    # The directory was removed behind our back (or never made): make it, try once more.
    known = list(connection.known_dirs)  # a copy: other connections of the pool add to it
    stale = [d for d in known if d == directory or d.startswith(directory + "/")]
    connection.known_dirs.difference_update(stale)
    make_dirs(connection, directory)
    return connection.ftp.transfercmd(f"STOR {temp}")


def _send(connection: Connection, conn: socket.socket, chunks: Iterable[bytes], progress: Any) -> None:
    graceful = False
    try:
        iterator = iter(chunks)
        while True:
            try:
                chunk = next(iterator)
            except StopIteration:
                break
            except BaseException as exc:
                raise StreamFailed() from exc
            conn.sendall(chunk)
            if progress is not None:
                progress(len(chunk))
        graceful = True
    finally:
        _close_data(conn, graceful)
        if graceful:
            connection.ftp.voidresp()
        else:
            with contextlib.suppress(ftplib.Error):  # 226 or 426, either way the STOR is over
                connection.ftp.voidresp()


def store_atomically(
    connection: Connection, target: str, temp: str, chunks: Iterable[bytes], progress: Any
) -> None:
    """STOR to ``temp`` beside ``target``, then RNFR/RNTO over ``target``."""
    directory = posixpath.dirname(target)
    make_dirs(connection, directory)
    try:
        conn = _open_stor(connection, temp, directory)
        _send(connection, conn, chunks, progress)
        _rename_over(connection, temp, target)
    except StreamFailed as exc:
        remove_quietly(connection, temp)
        raise (exc.__cause__ or exc) from None  # the caller's own error, as it was raised
    except BaseException as exc:
        if not connection_lost(exc):
            remove_quietly(connection, temp)
        raise


def _rename_over(connection: Connection, temp: str, target: str) -> None:
    try:
        connection.ftp.rename(temp, target)
    except ftplib.error_perm as exc:
        if _is_dir(connection, target):
            raise InvalidPath(f"cannot write {target}: it is a directory") from exc
        # Some servers (Windows ones) will not rename over an existing file: remove it
        # first (the name is briefly missing, never partial).
        connection.ftp.delete(target)
        connection.ftp.rename(temp, target)


def remove_quietly(connection: Connection, path: str) -> None:
    try:
        connection.ftp.delete(path)
    except Exception as exc:  # noqa: BLE001 - cleanup after a failure must not mask it
        log.debug("could not remove %s after a failed upload: %s", path, exc)


def open_retr(connection: Connection, remote: str, offset: int) -> tuple[socket.socket, int]:
    """Start a RETR at ``offset``: a missing file fails now, not on the first read.

    Returns the data connection and how many leading bytes to skip: 0 with REST,
    ``offset`` on the rare server without it (the bytes before it are read and dropped).
    """
    connection.binary()
    if offset and not connection.rest:
        return connection.ftp.transfercmd(f"RETR {remote}"), offset
    return connection.ftp.transfercmd(f"RETR {remote}", rest=offset or None), 0


def receive(
    connection: Connection, conn: socket.socket, length: int | None, skip: int = 0
) -> Iterator[bytes]:
    """The bytes of a RETR after ``skip``, up to ``length``; ends the transfer in step."""
    remaining = length
    complete = False
    try:
        while remaining is None or remaining > 0:
            block = conn.recv(BLOCK if remaining is None else min(BLOCK, remaining + skip))
            if not block:
                complete = True
                break
            if skip:
                block, skip = block[skip:], max(0, skip - len(block))
                if not block:
                    continue
            if remaining is not None:
                remaining -= len(block)
            yield block
    finally:
        _close_data(conn, graceful=complete)
        if complete:
            connection.ftp.voidresp()
        else:
            # Stopped before the end: the server answers the closed data connection with
            # one reply, 426 (or 226 if it had sent everything); read it to stay in step.
            with contextlib.suppress(ftplib.Error):
                connection.ftp.voidresp()


def copy_to_local(
    connection: Connection, conn: socket.socket, local: BinaryIO, progress: Callable[[int], None]
) -> None:
    for block in receive(connection, conn, None):
        local.write(block)
        progress(len(block))


def remove_tree(connection: Connection, remote: str, keep_root: bool) -> None:
    """``rm -r``: files first, then directories deepest first (temporaries included)."""
    directories = [remote]
    index = 0
    while index < len(directories):
        current = directories[index]
        index += 1
        for entry in list_directory(connection, current) or []:
            child = posixpath.join(current, entry.name)
            if entry.kind == "dir":
                directories.append(child)
            else:
                connection.ftp.delete(child)  # files and links alike
    for directory in reversed(directories):
        if keep_root and directory == remote:
            continue
        connection.ftp.rmd(directory)
    connection.known_dirs.clear()
