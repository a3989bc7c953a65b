"""The path-store toolkit: a store made of paths and directories is mostly its primitives.

Object stores (S3, GCS, Azure) implement the hooks directly. Path stores (local
disk and NFS, SFTP, FTP, HDFS) implement a :class:`PathFileSystem`: eight
primitives (``stat``, ``listdir``, ``open_read``, ``open_write``, ``rename``,
``remove``, ``rmdir``, ``mkdir``) and, where the store has faster ways, optional
ones (``rmtree``, ``copy``, ``put_file``, ``get_file``). :class:`PathStorePlugin`
derives every hook from them, once, for every such store:

- atomic writes: bytes go to a temporary name (``mlartifacts.paths.TEMP_PREFIX``)
  in the target directory, renamed over the target only when complete, removed on
  failure, never listed;
- ``mkdir -p`` with a cache of directories known to exist (per filesystem);
- listings (sorted; links followed, links out of the root refused) and recursive
  walks in path order; tree deletes; ranged reads; downloads; copies;
- one location string per root for messages (the URI, password masked), and one
  place where the store's errors are translated (:meth:`PathFileSystem.translate`).

A plugin::

    class MyFS(PathFileSystem):
        ...  # the eight primitives, in the SDK's terms

    def resolve(uri: str, settings: Settings) -> tuple[MyFS, str]:
        host, base = parse(uri)  # raise InvalidUri
        return shared(("my", host), lambda: MyFS(host)), base

    plugin = PathStorePlugin(schemes=["my"], resolve=resolve)

and its entry point names the object: ``my = "mlartifacts_my:plugin"``.
Remote stores keep their logged-in sessions in :class:`mlartifacts.pool.SessionPool`;
a reader or writer holds one with a :class:`Lease`.
"""

from __future__ import annotations

from .._redact import redact_uri
from ._files import temporary_name
from ._plugin import PathStorePlugin, Resolver
from ._pooled import Commands, Lease, LeasedWriter, PooledFileSystem, reusable_unless
from ._protocol import KnownDirs, PathFileSystem, PathInfo, Reader, Writer, translate_os_error
from ._root import PathRoot, shared
from ._uri import UriParts, split_uri

__all__ = [
    "Commands",
    "KnownDirs",
    "Lease",
    "LeasedWriter",
    "PathFileSystem",
    "PathInfo",
    "PathRoot",
    "PathStorePlugin",
    "PooledFileSystem",
    "Reader",
    "Resolver",
    "UriParts",
    "Writer",
    "redact_uri",
    "reusable_unless",
    "shared",
    "split_uri",
    "temporary_name",
    "translate_os_error",
]
