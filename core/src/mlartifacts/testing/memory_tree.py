"""An in-memory path store (``memtree://<tree>/<path>``): the toolkit's reference, for tests.

Directories and files live in process-local dictionaries, one tree per name.
``replacing_rename=False`` makes ``rename`` refuse to replace a file, as SFTP v3
and some FTP servers do, so the toolkit's fallback can be tested.
"""

from __future__ import annotations

import errno
import io
import posixpath
import threading
from urllib.parse import urlsplit

from .. import Capabilities, Settings
from ..errors import InvalidUri
from ..pathstore import PathFileSystem, PathInfo, PathStorePlugin, shared

__all__ = ["MemoryTree", "plugin"]


class MemoryTree(PathFileSystem):
    """A tree of directories and files in memory."""

    def __init__(self, replacing_rename: bool = True) -> None:
        self.replacing_rename = replacing_rename
        self.dirs: set[str] = {"/"}
        self.files: dict[str, bytes] = {}
        self.calls: list[str] = []  # primitive names, in call order (tests count round trips)
        self._lock = threading.Lock()

    def _log(self, name: str) -> None:
        with self._lock:
            self.calls.append(name)

    def stat(self, path: str, follow: bool = True) -> PathInfo | None:
        self._log("stat")
        name = posixpath.basename(path)
        if path in self.dirs:
            return PathInfo(name, True)
        data = self.files.get(path)
        return None if data is None else PathInfo(name, False, len(data))

    def listdir(self, path: str) -> list[PathInfo] | None:
        self._log("listdir")
        if path not in self.dirs:
            return None
        with self._lock:
            dirs = [PathInfo(posixpath.basename(d), True) for d in self.dirs if _parent(d) == path]
            files = [
                PathInfo(posixpath.basename(f), False, len(b))
                for f, b in self.files.items()
                if _parent(f) == path
            ]
        return dirs + files

    def open_read(self, path: str, offset: int, length: int | None) -> io.BytesIO:
        self._log("open_read")
        if path in self.dirs:
            raise IsADirectoryError(errno.EISDIR, "is a directory")
        if path not in self.files:
            raise FileNotFoundError(errno.ENOENT, "no such file")
        return io.BytesIO(self.files[path][offset:])

    def open_write(self, path: str) -> _Writer:
        self._log("open_write")
        if _parent(path) not in self.dirs:
            raise FileNotFoundError(errno.ENOENT, "no such directory")
        return _Writer(self, path)

    def rename(self, src: str, dst: str) -> None:
        self._log("rename")
        with self._lock:
            if dst in self.dirs:
                raise IsADirectoryError(errno.EISDIR, "is a directory")
            if dst in self.files and not self.replacing_rename:
                raise FileExistsError(errno.EEXIST, "the target exists")
            self.files[dst] = self.files.pop(src)

    def remove(self, path: str) -> None:
        self._log("remove")
        with self._lock:
            if self.files.pop(path, None) is None:
                raise FileNotFoundError(errno.ENOENT, "no such file")

    def rmdir(self, path: str) -> None:
        self._log("rmdir")
        with self._lock:
            if any(_parent(p) == path for p in (*self.dirs, *self.files)):
                raise OSError(errno.ENOTEMPTY, "directory not empty")
            self.dirs.discard(path)

    def mkdir(self, path: str) -> None:
        self._log("mkdir")
        with self._lock:
            if path in self.dirs or path in self.files:
                raise FileExistsError(errno.EEXIST, "exists")
            if _parent(path) not in self.dirs:
                raise FileNotFoundError(errno.ENOENT, "no such directory")
            self.dirs.add(path)


def _parent(path: str) -> str:
    return posixpath.dirname(path)


class _Writer:
    def __init__(self, tree: MemoryTree, path: str) -> None:
        self.tree, self.path, self.buffer = tree, path, io.BytesIO()

    def write(self, data: bytes) -> None:
        self.buffer.write(data)

    def close(self) -> None:
        with self.tree._lock:
            self.tree.files[self.path] = self.buffer.getvalue()

    def abort(self) -> None:
        self.buffer = io.BytesIO()


def resolve(uri: str, settings: Settings) -> tuple[MemoryTree, str]:
    """``memtree://<tree>/<path>``; a tree named ``v3-...`` has a rename that does not replace."""
    parts = urlsplit(uri)
    if parts.scheme != "memtree" or not parts.netloc:
        raise InvalidUri(f"{uri!r}: expected memtree://<tree>/<path>")
    tree = parts.netloc
    fs = shared(("memtree", tree), lambda: MemoryTree(replacing_rename=not tree.startswith("v3-")))
    return fs, posixpath.normpath("/" + parts.path.strip("/"))


plugin = PathStorePlugin(schemes=["memtree"], resolve=resolve, capabilities=Capabilities(ranged_read=True))
