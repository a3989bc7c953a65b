"""A minimal path-store backend (``template-paths:///<directory>``): replace ``os`` with your SDK.

A store made of paths and directories (SFTP, FTP, HDFS, a mounted disk...) writes
only its primitives: the core's toolkit (:mod:`mlartifacts.pathstore`) derives
every hook from them, atomic writes through a temporary name, ``mkdir -p``,
walks, tree deletes, ranged reads and error locations included. Here the
"server" is a local directory, reached through ``os``.
"""

from __future__ import annotations

import os
import stat
from typing import BinaryIO
from urllib.parse import unquote, urlsplit

from mlartifacts import Capabilities, Settings
from mlartifacts.errors import InvalidUri
from mlartifacts.pathstore import PathFileSystem, PathInfo, PathStorePlugin, shared


class TemplateFS(PathFileSystem):
    """The primitives, one SDK call each. Raise the SDK's errors: the toolkit translates them
    (override ``translate`` with your error table; the default knows ``OSError`` errnos)."""

    def stat(self, path: str, follow: bool = True) -> PathInfo | None:
        try:
            st = os.stat(path, follow_symlinks=follow)
        except FileNotFoundError:
            return None  # "nothing there" is an answer, not an error
        is_dir = stat.S_ISDIR(st.st_mode)
        return PathInfo(os.path.basename(path), is_dir, None if is_dir else st.st_size, st.st_mtime)

    def listdir(self, path: str) -> list[PathInfo] | None:
        try:
            names = os.listdir(path)
        except (FileNotFoundError, NotADirectoryError):
            return None
        # Entries without a size are stat'ed by the toolkit; give what the listing has.
        return [PathInfo(name, os.path.isdir(os.path.join(path, name))) for name in names]

    def open_read(self, path: str, offset: int, length: int | None) -> BinaryIO:
        src = open(path, "rb")  # noqa: SIM115 - the toolkit closes it
        src.seek(offset)
        return src

    def open_write(self, path: str) -> _Writer:
        return _Writer(open(path, "wb"))  # closed by close() or abort()

    def rename(self, src: str, dst: str) -> None:
        os.replace(src, dst)

    def remove(self, path: str) -> None:
        os.unlink(path)

    def rmdir(self, path: str) -> None:
        os.rmdir(path)

    def mkdir(self, path: str) -> None:
        os.mkdir(path)


class _Writer:
    """close(): every byte is stored; abort(): give up quietly (the toolkit removes the file)."""

    def __init__(self, file: BinaryIO) -> None:
        self.file = file

    def write(self, data: bytes) -> None:
        self.file.write(data)

    def close(self) -> None:
        self.file.close()

    def abort(self) -> None:
        self.file.close()


def resolve(uri: str, settings: Settings) -> tuple[TemplateFS, str]:
    """Parse the URI (raise InvalidUri); return the store's filesystem and the root's path on it.

    ``shared`` keeps one filesystem per key: put in the key whatever makes two differ
    (host, port, user, password...), and size connection pools from ``settings``.
    """
    parts = urlsplit(uri)
    if parts.netloc or not parts.path.startswith("/"):
        raise InvalidUri(f"{uri!r}: expected template-paths:///<absolute directory>")
    return shared(("template-paths",), TemplateFS), unquote(parts.path)


# The object the entry point names: template-paths = "mlartifacts_template.paths:plugin".
plugin = PathStorePlugin(
    schemes=["template-paths"], resolve=resolve, capabilities=Capabilities(ranged_read=True)
)
