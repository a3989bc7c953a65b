"""What the hooks do on one SFTP channel: atomic writes, pipelined reads, walks, tree deletes."""

from __future__ import annotations

import errno
import logging
import posixpath
import stat as stat_module
import uuid
from typing import TYPE_CHECKING, Any, BinaryIO, Iterable, Iterator

from mlartifacts import FileInfo
from mlartifacts.errors import InvalidPath, NotFound
from mlartifacts.paths import TEMP_PREFIX

from ._errors import connection_lost

if TYPE_CHECKING:
    import paramiko

    from ._pool import Session

__all__ = [
    "children",
    "open_for_read",
    "remove_quietly",
    "remove_tree",
    "stream",
    "temporary_for",
    "walk_files",
    "write_atomically",
]

log = logging.getLogger("mlartifacts.sftp")

BLOCK = 1024 * 1024  # bytes handed to paramiko (or the caller) per call


def tune(handle: paramiko.SFTPFile, session: Session) -> None:
    """Use the request size the server allows (paramiko reads it from the instance)."""
    handle.MAX_REQUEST_SIZE = session.request_size


def info_from(rel: str, attrs: Any) -> FileInfo:
    if stat_module.S_ISDIR(attrs.st_mode or 0):
        return FileInfo(rel, True, modified=attrs.st_mtime)
    return FileInfo(rel, False, attrs.st_size, modified=attrs.st_mtime)


def children(session: Session, remote: str, rel: str) -> list[tuple[FileInfo, bool]]:
    """The children of a directory, each with whether it is a symbolic link.

    Empty when the directory is missing or a file. Links are followed (a link to a
    file is a file); broken links and our temporaries are left out.
    """
    try:
        listing = session.sftp.listdir_attr(remote)
    except OSError as exc:
        if exc.errno in (errno.ENOENT, errno.ENOTDIR) or _generic_failure(exc):
            return []
        raise
    found = []
    for attrs in listing:
        name = attrs.filename
        if name in (".", "..") or name.startswith(TEMP_PREFIX):
            continue
        child = f"{rel}/{name}" if rel else name
        link = stat_module.S_ISLNK(attrs.st_mode or 0)
        if link:
            try:
                attrs = session.sftp.stat(posixpath.join(remote, name))
            except FileNotFoundError:
                log.warning("skipping %s: a broken symbolic link", posixpath.join(remote, name))
                continue
        found.append((info_from(child, attrs), link))
    return found


def make_dirs(session: Session, directory: str) -> None:
    """``mkdir -p`` on the server, skipping directories this channel already saw."""
    missing: list[str] = []
    current = directory
    while current not in ("/", "", ".") and current not in session.known_dirs:
        try:
            attrs = session.sftp.stat(current)
        except FileNotFoundError:
            missing.append(current)
            current = posixpath.dirname(current)
            continue
        if not stat_module.S_ISDIR(attrs.st_mode or 0):
            raise InvalidPath(f"cannot create {directory}: {current} is a file")
        break
    for path in reversed(missing):
        try:
            session.sftp.mkdir(path)
        except OSError as exc:
            # Another writer may have made it meanwhile; anything else shows on the open.
            if connection_lost(exc):
                raise
    session.known_dirs.add(directory)


def temporary_for(target: str) -> str:
    """A fresh temporary name in the directory of ``target`` (hidden from listings)."""
    return posixpath.join(posixpath.dirname(target), f"{TEMP_PREFIX}{uuid.uuid4().hex}")


def write_atomically(
    session: Session, target: str, temp: str, chunks: Iterable[bytes], progress: Any = None
) -> None:
    """Write ``chunks`` to ``temp`` (beside ``target``), then rename it over ``target``."""
    directory = posixpath.dirname(target)
    make_dirs(session, directory)
    try:
        try:
            handle = session.sftp.open(temp, "wb")
        except FileNotFoundError:
            session.known_dirs.discard(directory)  # removed behind our back: make it again
            make_dirs(session, directory)
            handle = session.sftp.open(temp, "wb")
        with handle:
            tune(handle, session)
            handle.set_pipelined(True)
            for chunk in chunks:
                handle.write(chunk)
                if progress is not None:
                    progress(len(chunk))
        # Closing waited for every write's acknowledgement: the bytes are all there.
        _rename_over(session, temp, target)
    except BaseException as exc:
        if not connection_lost(exc):
            remove_quietly(session, temp)
        raise


def _rename_over(session: Session, temp: str, target: str) -> None:
    try:
        _rename(session, temp, target)
    except OSError as exc:
        if connection_lost(exc):
            raise
        # Checked only now, on failure, to keep a round trip off every successful write.
        try:
            is_dir = stat_module.S_ISDIR(session.sftp.stat(target).st_mode or 0)
        except OSError:
            is_dir = False
        if is_dir:
            raise InvalidPath(f"cannot write {target}: it is a directory") from exc
        raise


def _rename(session: Session, temp: str, target: str) -> None:
    connection = session.connection
    if connection.posix_rename:
        try:
            session.sftp.posix_rename(temp, target)  # atomic replace (posix-rename@openssh.com)
            return
        except OSError as exc:
            if connection_lost(exc) or exc.errno is not None:
                raise
            # "Operation unsupported": the server lacks the extension.
            log.info("%s has no posix-rename; replacing files in two steps", session.sftp)
            connection.posix_rename = False
    try:
        session.sftp.rename(temp, target)
    except OSError as exc:
        if connection_lost(exc):
            raise
        # Plain SFTP v3 rename refuses to replace a file: remove it first (a short window
        # in which the name is missing, never one in which it is partial).
        session.sftp.remove(target)
        session.sftp.rename(temp, target)


def remove_quietly(session: Session, path: str) -> None:
    try:
        session.sftp.remove(path)
    except Exception as exc:  # noqa: BLE001 - cleanup after a failure must not mask it
        log.debug("could not remove %s after a failed write: %s", path, exc)


def open_for_read(session: Session, remote: str) -> tuple[paramiko.SFTPFile, int]:
    """Open a file to read, with its size; NotFound / InvalidPath now, not on first read."""
    handle = session.sftp.open(remote, "rb")
    try:
        attrs = handle.stat()
        if stat_module.S_ISDIR(attrs.st_mode or 0):
            raise InvalidPath(f"{remote} is a directory, not a file")
    except BaseException:
        handle.close()
        raise
    tune(handle, session)
    return handle, attrs.st_size or 0


def stream(handle: paramiko.SFTPFile, size: int, offset: int, length: int | None) -> Iterator[bytes]:
    """Read ``[offset, offset+length)`` with read-ahead (every request in flight at once)."""
    end = size if length is None else min(size, offset + length)
    if offset >= end:
        return
    handle.seek(offset)
    if end - offset <= handle.MAX_REQUEST_SIZE:
        # One request holds it all: read-ahead (a thread per file) would only cost time.
        block = handle.read(end - offset)
        if len(block) < end - offset:
            raise EOFError(f"the file ended at byte {offset + len(block)} of {end}")
        yield block
        return
    # Never prefetch past the end: paramiko would keep the EOF error for the next read.
    handle.prefetch(end)
    position = offset
    while position < end:
        block = handle.read(min(BLOCK, end - position))
        if not block:
            raise EOFError(f"the file ended at byte {position} of {end}")
        position += len(block)
        yield block


def copy_to_local(handle: paramiko.SFTPFile, size: int, local: BinaryIO, progress: Any) -> None:
    for block in stream(handle, size, 0, None):
        local.write(block)
        progress(len(block))


def walk_files(session: Session, remote: str, rel: str) -> Iterator[FileInfo]:
    """Every file below a directory (links to directories are not descended, as os.walk)."""
    pending = [(remote, rel)]
    while pending:
        directory, prefix = pending.pop()
        for info, link in children(session, directory, prefix):
            if not info.is_dir:
                yield info
            elif not link:
                pending.append((posixpath.join(directory, info.path.rsplit("/", 1)[-1]), info.path))


def remove_tree(session: Session, remote: str) -> None:
    """``rm -r``: files and links first, then directories, deepest first."""
    directories = [remote]
    index = 0
    while index < len(directories):
        current = directories[index]
        index += 1
        for attrs in session.sftp.listdir_attr(current):
            child = posixpath.join(current, attrs.filename)
            if stat_module.S_ISDIR(attrs.st_mode or 0):
                directories.append(child)
            else:
                session.sftp.remove(child)  # files, temporaries and links alike
    for directory in reversed(directories):
        session.sftp.rmdir(directory)
    session.known_dirs.clear()


def stat_remote(session: Session, remote: str, rel: str) -> FileInfo:
    try:
        return info_from(rel, session.sftp.stat(remote))
    except FileNotFoundError:
        raise NotFound(f"no such file or directory: {remote}") from None


def _generic_failure(exc: OSError) -> bool:
    # OpenSSH answers opendir() of a plain file with SSH_FX_FAILURE ("Failure").
    return exc.errno is None and str(exc) in ("Failure", "[Errno None] Failure")
