"""HDFS's primitives, through pyarrow's ``HadoopFileSystem``: the core's path-store toolkit does the rest.

Bytes stream in blocks both ways (a file is never held whole in memory); reads
start at any offset (``seek``, then sequential reads that use HDFS's read-ahead);
deletes of trees and ``mkdir -p`` are one NameNode call each, as HDFS does them
natively.
"""

from __future__ import annotations

import atexit
import errno
import random
import threading
import time
import weakref
from typing import TYPE_CHECKING

from mlartifacts._types import MiB
from mlartifacts.errors import ArtifactError
from mlartifacts.pathstore import PathFileSystem, PathInfo, Reader, Writer

from ._client import Namenode, connect
from ._config import HdfsConfig
from ._errors import translate

if TYPE_CHECKING:
    from pyarrow import NativeFile
    from pyarrow.fs import FileInfo, HadoopFileSystem

__all__ = ["HdfsFileSystem", "close_all"]

_RENAME_ATTEMPTS = 10


class HdfsFileSystem(PathFileSystem):
    """One namenode as one login sees it; connects (starting the JVM) on first use.

    Shared by every root on the same namenode and settings; pyarrow's filesystem is
    thread-safe, so one connection serves every thread.
    """

    # As pyarrow's own copies: Python's per-block work is noise beside the JVM's copy,
    # and each block is one Java array the client's heap churns through.
    block_size = 1 * MiB

    def __init__(self, namenode: Namenode, config: HdfsConfig) -> None:
        self.namenode = namenode
        self.config = config
        self._client: HadoopFileSystem | None = None
        self._lock = threading.Lock()
        _INSTANCES.add(self)

    def __repr__(self) -> str:
        return f"<HdfsFileSystem {self.namenode.host}:{self.namenode.port} user={self.config.user}>"

    @property
    def client(self) -> HadoopFileSystem:
        """The connected pyarrow filesystem (made on first use: it starts the JVM)."""
        client = self._client
        if client is None:
            with self._lock:
                if self._client is None:
                    self._client = connect(self.namenode, self.config)
                client = self._client
        return client

    def close(self) -> None:
        """Disconnect now (the next call connects again); the JVM lives as long as the process."""
        with self._lock:
            client, self._client = self._client, None
        del client  # pyarrow disconnects (closing the Hadoop client) with its last reference

    def translate(self, exc: Exception, where: str, op: str) -> ArtifactError:
        return translate(exc, where, op)

    # -- the primitives ------------------------------------------------------------------

    def stat(self, path: str, follow: bool = True) -> PathInfo | None:
        from pyarrow.fs import FileSelector, FileType

        info = self.client.get_file_info(path)
        if info.type != FileType.NotFound:
            return _info(info)
        # pyarrow answers "not found" for any failure of this call, an unreachable
        # namenode included; listing the path raises the real error (or confirms).
        try:
            self.client.get_file_info(FileSelector(path))
        except FileNotFoundError:
            return None
        except OSError as exc:
            if exc.errno is not None:
                raise
        # It appeared meanwhile (a directory listed, or a file pyarrow refused to list).
        info = self.client.get_file_info(path)
        return None if info.type == FileType.NotFound else _info(info)

    def listdir(self, path: str) -> list[PathInfo] | None:
        from pyarrow.fs import FileSelector

        try:
            listed = self.client.get_file_info(FileSelector(path))
        except FileNotFoundError:
            return None
        except OSError as exc:
            if exc.errno is None and "is a file" in str(exc):  # pyarrow's check: a file has no entries
                return None
            raise
        return sorted((_info(info) for info in listed), key=lambda entry: entry.name)

    def open_read(self, path: str, offset: int, length: int | None) -> Reader:
        source = self.client.open_input_file(path)
        if offset:
            source.seek(offset)  # then sequential reads, which HDFS reads ahead for
        return source

    def open_write(self, path: str) -> Writer:
        return _Writer(self.client.open_output_stream(path))

    def rename(self, src: str, dst: str) -> None:
        # libhdfs' rename neither replaces a file nor refuses a directory (HDFS moves the
        # source *into* it): remove a file in the way first, refuse a directory, as POSIX
        # does. Another writer may slip its own file in between: then go again.
        for attempt in range(_RENAME_ATTEMPTS):
            target = self.stat(dst)
            if target is not None:
                if target.is_dir:
                    raise IsADirectoryError(errno.EISDIR, "it is a directory", dst)
                try:
                    self.client.delete_file(dst)
                except OSError:
                    pass  # removed by someone else already: the rename says what matters
            try:
                self.client.move(src, dst)
                return
            except OSError:
                if self.stat(src) is None:
                    raise  # our temporary is gone: not a lost race
            time.sleep(random.uniform(0, 0.01 * (attempt + 1)))  # let the racing writers spread out
        raise FileExistsError(errno.EEXIST, "other writers kept replacing the file", dst)

    def remove(self, path: str) -> None:
        try:
            self.client.delete_file(path)
        except OSError:
            # libhdfs reports a missing file as EIO: tell that apart from a real failure.
            if self.stat(path) is None:
                raise FileNotFoundError(errno.ENOENT, "no such file", path) from None
            raise

    def rmdir(self, path: str) -> None:
        entries = self.listdir(path)
        if entries is None:
            raise FileNotFoundError(errno.ENOENT, "no such directory", path)
        if entries:
            raise OSError(errno.ENOTEMPTY, "directory not empty", path)
        self.client.delete_dir(path)

    def mkdir(self, path: str) -> None:
        self.client.create_dir(path, recursive=True)  # HDFS's mkdirs: one call, parents included

    def rmtree(self, path: str) -> None:
        self.client.delete_dir(path)  # HDFS deletes a tree in one NameNode call


_INSTANCES: weakref.WeakSet[HdfsFileSystem] = weakref.WeakSet()


@atexit.register
def close_all() -> None:
    """Disconnect every HDFS filesystem of the process.

    Run at exit, while the interpreter is whole: left to interpreter teardown, the
    Hadoop clients (their lease renewers, streams whose close failed) would be shut
    down by the JVM's own exit hooks while Python and pyarrow are already unloading.
    """
    for fs in list(_INSTANCES):
        fs.close()


def _info(info: FileInfo) -> PathInfo:
    from pyarrow.fs import FileType

    modified = info.mtime_ns / 1e9 if info.mtime_ns is not None else None
    if info.type == FileType.Directory:
        return PathInfo(info.base_name, True, modified=modified)
    return PathInfo(info.base_name, False, info.size, modified=modified)


class _Writer:
    """An HDFS file being written; ``close`` completes it on the NameNode."""

    def __init__(self, sink: NativeFile) -> None:
        self._sink = sink

    def write(self, data: bytes, /) -> object:
        return self._sink.write(data)

    def close(self) -> None:
        self._sink.close()

    def abort(self) -> None:
        # libhdfs cannot abandon a file: close what was written (the toolkit then
        # removes the temporary). A failed DataNode makes this close fail too.
        try:
            self._sink.close()
        except OSError:
            pass
