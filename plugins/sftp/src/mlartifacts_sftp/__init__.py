"""SFTP servers (``sftp://[user[:password]@]host[:port]/path``), built on paramiko.

Hosts are completed from ``~/.ssh/config`` (HostName, User, Port, IdentityFile...),
so an alias alone works; keys (Ed25519, RSA, ECDSA), ssh-agent and passwords log
in. Host keys are checked against known_hosts (``[host]:port`` entries included)
and an unknown or changed key is refused with advice, never accepted silently.

Writes go to a temporary name in the target directory, then are renamed over the
target (``posix-rename@openssh.com`` where the server has it), so nothing partial
is ever visible. Channels are pooled per server and login, transfers pipelined.
paramiko is imported only when an sftp URI is used.
"""

from __future__ import annotations

import posixpath
import stat as stat_module
from typing import TYPE_CHECKING, Iterable, Iterator, Sequence

from mlartifacts import Capabilities, FileInfo, hookimpl
from mlartifacts.errors import InvalidPath, NotFound, TransientError
from mlartifacts.hookspecs import Progress

from . import _ops
from ._errors import HostKeyError, sftp_errors
from ._pool import Session, pool_for, reusable
from ._uri import SftpRoot, parse_uri

if TYPE_CHECKING:
    import paramiko

    from mlartifacts.pool import SessionPool

__all__ = ["HostKeyError", "SftpRoot"]


@hookimpl
def schemes() -> Sequence[str]:
    return ["sftp"]


@hookimpl
def resolve_uri(uri: str) -> SftpRoot:
    return parse_uri(uri)


@hookimpl
def capabilities() -> Capabilities:
    # Reads seek natively; one pipelined stream is as fast as paramiko goes (it is
    # CPU-bound, and parallel ranges over one connection only contend), so downloads
    # are not split into ranges.
    return Capabilities(ranged_read=True, single_stream=True)


def _where(root: SftpRoot, path: str) -> str:
    return f"{root.display.rstrip('/')}/{path}" if path else root.display


@hookimpl
def stat(root: SftpRoot, path: str) -> FileInfo:
    pool = pool_for(root)
    with sftp_errors(_where(root, path)), pool.session() as session:
        return _ops.stat_remote(session, root.remote(path, session.home), path)


@hookimpl(specname="list")
def list_entries(root: SftpRoot, path: str, recursive: bool) -> list[FileInfo]:
    # Collected while the channel is held, then handed over: a caller iterating
    # slowly (or calling other hooks meanwhile) never pins a pooled channel.
    pool = pool_for(root)
    with sftp_errors(_where(root, path)), pool.session() as session:
        remote = root.remote(path, session.home)
        if recursive:
            return list(_ops.walk_files(session, remote, path))
        return [info for info, _ in _ops.children(session, remote, path)]


@hookimpl
def upload(root: SftpRoot, path: str, local_file: str, progress: Progress) -> None:
    with open(local_file, "rb") as src:
        _write(root, path, iter(lambda: src.read(_ops.BLOCK), b""), progress)


@hookimpl
def write(root: SftpRoot, path: str, chunks: Iterable[bytes]) -> None:
    _write(root, path, chunks, None)


def _write(root: SftpRoot, path: str, chunks: Iterable[bytes], progress: Progress | None) -> None:
    if not path and not root.path.strip("/"):
        raise InvalidPath(f"{root.display}: cannot write over the server's root directory")
    pool = pool_for(root)
    where = _where(root, path)
    temp = ""
    try:
        with sftp_errors(where), pool.session() as session:
            target = root.remote(path, session.home)
            temp = _ops.temporary_for(target)
            _ops.write_atomically(session, target, temp, chunks, progress)
    except TransientError:
        if temp:
            _clean_up(pool, temp)
        raise


def _clean_up(pool: SessionPool[Session], temp: str) -> None:
    """Remove the temporary of a write whose connection broke, over a new connection."""
    try:
        with pool.session() as session:
            _ops.remove_quietly(session, temp)
    except Exception:  # noqa: BLE001 - best effort: the write's own error is what matters
        pass


@hookimpl
def download(root: SftpRoot, path: str, local_file: str, progress: Progress) -> None:
    pool = pool_for(root)
    with sftp_errors(_where(root, path)):
        session = pool.acquire()
        try:
            handle, size = _ops.open_for_read(session, root.remote(path, session.home))
        except BaseException as exc:
            # Nothing was read: after a "no such file" reply the channel is fine.
            (pool.release if reusable(exc) else pool.discard)(session)
            raise
        keep = False
        try:
            with handle, open(local_file, "wb") as dst:
                _ops.copy_to_local(handle, size, dst, progress)
            keep = True
        finally:
            # Stopped midway (progress may raise to cancel), read-ahead replies may still
            # be on their way: that channel is closed rather than reused.
            (pool.release if keep else pool.discard)(session)


@hookimpl
def read(root: SftpRoot, path: str, offset: int, length: int | None) -> Iterator[bytes]:
    pool = pool_for(root)
    where = _where(root, path)
    with sftp_errors(where):
        session = pool.acquire()
        try:
            handle, size = _ops.open_for_read(session, root.remote(path, session.home))
        except BaseException as exc:
            (pool.release if reusable(exc) else pool.discard)(session)
            raise
    # The file is open (a missing one failed above); the channel is held until the
    # caller closes the generator.
    return _reading(pool, session, handle, size, offset, length, where)


def _reading(
    pool: SessionPool[Session],
    session: Session,
    handle: paramiko.SFTPFile,
    size: int,
    offset: int,
    length: int | None,
    where: str,
) -> Iterator[bytes]:
    end = size if length is None else min(size, offset + length)
    finished = False
    try:
        with sftp_errors(where):
            yield from _ops.stream(handle, size, offset, length)
            handle.close()
        finished = True
    finally:
        if finished or offset >= end:
            pool.release(session)
        else:
            # Stopped early or failed: read-ahead replies may still be on their way, so
            # the channel is closed rather than reused.
            pool.discard(session)


@hookimpl
def delete(root: SftpRoot, path: str) -> None:
    pool = pool_for(root)
    with sftp_errors(_where(root, path)), pool.session() as session:
        target = root.remote(path, session.home)
        try:
            attrs = session.sftp.lstat(target)
        except FileNotFoundError:
            raise NotFound(f"no such file or directory: {target}") from None
        if stat_module.S_ISDIR(attrs.st_mode or 0):
            _ops.remove_tree(session, target)
        else:
            session.sftp.remove(target)
            session.known_dirs.discard(posixpath.dirname(target))
