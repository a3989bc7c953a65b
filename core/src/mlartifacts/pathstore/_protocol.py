"""The primitives a path store provides: what a plugin writes, and nothing the toolkit derives.

Paths given to primitives are the store's own paths (absolute on the server, or
on the local disk), made by :meth:`PathFileSystem.join`. A primitive may raise its
SDK's errors as they are: the toolkit translates them once, at the hook, with
:meth:`PathFileSystem.translate` and the location the user asked about.
"""

from __future__ import annotations

import abc
import errno
import posixpath
import threading
from dataclasses import dataclass
from types import ModuleType
from typing import Callable, Iterable, Protocol

from .._backend import translate_error
from ..errors import ArtifactError, InvalidPath, NotFound, PermissionDenied, PreconditionFailed

__all__ = ["KnownDirs", "PathFileSystem", "PathInfo", "Reader", "Writer", "translate_os_error"]

Progress = Callable[[int], None]

#: errno values whose meaning does not depend on the store (POSIX, and SFTP's status codes).
_BY_ERRNO: dict[int, type[ArtifactError]] = {
    errno.ENOENT: NotFound,
    errno.ENOTDIR: NotFound,
    errno.EACCES: PermissionDenied,
    errno.EPERM: PermissionDenied,
    errno.EISDIR: InvalidPath,
    errno.ENAMETOOLONG: InvalidPath,
    # rmdir of a directory a concurrent writer has just written into.
    errno.ENOTEMPTY: PreconditionFailed,
}


@dataclass(frozen=True)
class PathInfo:
    """One name in a directory (``listdir``), or what is at a path (``stat``).

    ``is_dir`` None means "a symbolic link whose target is not known yet": the
    toolkit stats it (following the link) when it needs to know. A file whose
    ``size`` is None is stat'ed too.
    """

    name: str
    is_dir: bool | None
    size: int | None = None
    modified: float | None = None  # POSIX timestamp
    link: bool = False  # a symbolic link (is_dir and size describe its target, when known)


class Reader(Protocol):
    """An open file being read: ``read(n)`` returns up to n bytes, b'' at the end.

    ``close`` may be called more than once, and before the end (the caller stopped).
    """

    def read(self, size: int, /) -> bytes: ...

    def close(self) -> None: ...


class Writer(Protocol):
    """A file being written: ``close`` makes every byte stored, ``abort`` gives up quietly."""

    def write(self, data: bytes, /) -> object: ...

    def close(self) -> None: ...

    def abort(self) -> None: ...


def translate_os_error(exc: BaseException, where: str) -> ArtifactError:
    """The error for an ``OSError`` by its errno (and for other built-in exceptions by type).

    The message gives the error's words, never the file name the OS put in it.
    """
    if isinstance(exc, ArtifactError):
        return exc
    if isinstance(exc, OSError) and exc.errno in _BY_ERRNO:
        return _BY_ERRNO[exc.errno](f"{where}: {exc.strerror or exc}")
    if isinstance(exc, Exception):
        return translate_error(exc, where)
    raise exc


class KnownDirs:
    """Directories known to exist on one store: ``mkdir -p`` skips them (a round trip each)."""

    def __init__(self) -> None:
        self._dirs: set[str] = set()
        self._lock = threading.Lock()
        # Writers into one new directory make it once: the others wait, then find it known.
        self._making = [threading.Lock() for _ in range(64)]

    def __contains__(self, path: object) -> bool:
        return path in self._dirs

    def making(self, path: str) -> threading.Lock:
        """The lock to hold while making ``path`` (one of a few, shared by hash)."""
        return self._making[hash(path) % len(self._making)]

    def add(self, path: str) -> None:
        with self._lock:
            self._dirs.add(path)

    def forget(self, path: str, sep: str = "/") -> None:
        """Forget ``path`` and everything below it (it was removed, or is gone)."""
        below = path.rstrip(sep) + sep
        with self._lock:
            self._dirs = {d for d in self._dirs if d != path and not d.startswith(below)}


class PathFileSystem(abc.ABC):
    """The primitives of a hierarchical store; the toolkit derives every hook from them.

    Required: ``stat``, ``listdir``, ``open_read``, ``open_write``, ``rename``,
    ``remove``, ``rmdir``, ``mkdir``. Optional (override to use them): ``join``
    (to refuse paths, as the local disk refuses links out of the root),
    ``translate`` (the store's error table), the fast paths ``rmtree``,
    ``copy``, ``put_file`` and ``get_file``, and ``get_xattr``/``set_xattr`` (digests
    kept on the file itself rather than in a sidecar); without them the toolkit walks,
    streams and copies through this process. Instances are shared by every root on
    the same server and login (see :func:`mlartifacts.pathstore.shared`), and
    called from many threads at once.
    """

    #: How the store's paths are put together (``os.path`` for the local disk).
    pathmod: ModuleType = posixpath
    #: Bytes per block when the toolkit streams a file in or out.
    block_size: int = 1024 * 1024

    @abc.abstractmethod
    def stat(self, path: str, follow: bool = True) -> PathInfo | None:
        """What is at ``path`` (following a final link unless ``follow`` is False), or None."""

    @abc.abstractmethod
    def listdir(self, path: str) -> Iterable[PathInfo] | None:
        """The entries of directory ``path`` (links not followed), or None if it is not one."""

    @abc.abstractmethod
    def open_read(self, path: str, offset: int, length: int | None) -> Reader:
        """Open a file to read from ``offset`` (``length``: how much will be read, if known).

        A missing file fails here, not on the first read.
        """

    @abc.abstractmethod
    def open_write(self, path: str) -> Writer:
        """Create (or truncate) the file at ``path`` to write it; its directory exists."""

    @abc.abstractmethod
    def rename(self, src: str, dst: str) -> None:
        """Rename ``src`` to ``dst``, replacing a file there where the store can."""

    @abc.abstractmethod
    def remove(self, path: str) -> None:
        """Remove a file (or a symbolic link, never what it points to)."""

    @abc.abstractmethod
    def rmdir(self, path: str) -> None:
        """Remove an empty directory."""

    @abc.abstractmethod
    def mkdir(self, path: str) -> None:
        """Make one directory (its parent exists)."""

    @property
    def known_dirs(self) -> KnownDirs:
        """Directories known to exist here, shared by every root on this store."""
        found = self.__dict__.get("_known_dirs")
        if found is None:  # setdefault: two threads racing here end up with the same one
            found = self.__dict__.setdefault("_known_dirs", KnownDirs())
        return found  # type: ignore[no-any-return]

    # -- optional ----------------------------------------------------------------------

    def join(self, base: str, rel: str) -> str:
        """The store path of the artifact path ``rel`` below ``base``; may refuse it (InvalidPath)."""
        return self.pathmod.join(base, *rel.split("/")) if rel else base

    def translate(self, exc: Exception, where: str, op: str) -> ArtifactError:
        """The :mod:`mlartifacts.errors` error for ``exc``, raised by operation ``op`` at ``where``."""
        return translate_os_error(exc, where)

    def rmtree(self, path: str) -> None:
        """Remove a directory and everything below it, links not followed (optional)."""
        raise NotImplementedError

    def copy(self, src: str, dst: str) -> None:
        """Copy file ``src`` to the new file ``dst`` inside the store (optional)."""
        raise NotImplementedError

    def put_file(self, local_file: str, path: str, progress: Progress) -> None:
        """Write a local file to the new file ``path`` (optional: a faster way than streaming)."""
        raise NotImplementedError

    def get_file(self, path: str, local_file: str, progress: Progress) -> None:
        """Write the file at ``path`` into ``local_file`` (optional: faster than streaming)."""
        raise NotImplementedError

    def get_xattr(self, path: str, name: str) -> bytes | None:
        """Extended attribute ``name`` of the file at ``path``, None if it has none (optional).

        With ``set_xattr``, the toolkit keeps each file's digest in an attribute instead of
        a sidecar file. Raise NotImplementedError where this filesystem has none after all.
        """
        raise NotImplementedError

    def set_xattr(self, path: str, name: str, value: bytes) -> None:
        """Set extended attribute ``name`` of the file at ``path`` (optional, with ``get_xattr``)."""
        raise NotImplementedError

    def has(self, primitive: str) -> bool:
        """Whether this store implements the optional ``primitive`` (``"copy"``, ``"rmtree"``...)."""
        return getattr(type(self), primitive) is not getattr(PathFileSystem, primitive)
