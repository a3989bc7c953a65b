"""The two sides of ``sync`` and ``verify``: a local directory, or a path in a store.

Either is listed once into ``{relative path: FileInfo}``. A local file's digest is
computed only when asked (a comparison that needs it), and then once.
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Iterable

from . import paths as _paths
from ._types import FileInfo
from .errors import InvalidPath, NotFound
from .transfer._checksums import hasher, hexdigest
from .transfer._local import walk_files

if TYPE_CHECKING:
    from .store import ArtifactStore

__all__ = ["LocalTree", "StoreTree", "Tree", "hash_local_file"]

_BLOCK = 1024 * 1024


def hash_local_file(local_file: str, algorithms: Iterable[str]) -> dict[str, str]:
    """The hex digests of a local file for each computable algorithm, in one read."""
    hashers = {name: h for name in set(algorithms) if (h := hasher(name)) is not None}
    if not hashers:
        return {}
    with open(local_file, "rb") as f:
        # hashlib releases the GIL on blocks this large: threads hash files in parallel.
        for block in iter(lambda: f.read(_BLOCK), b""):
            for h in hashers.values():
                h.update(block)
    return {name: hexdigest(h) for name, h in hashers.items()}


@dataclass
class LocalTree:
    """A local directory: its files, by path relative to it, with sizes and mtimes."""

    root: str
    files: dict[str, FileInfo] = field(default_factory=dict)
    _digests: dict[tuple[str, str], str | None] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    is_local = True

    @classmethod
    def scan(cls, root: str, *, must_exist: bool = True) -> LocalTree:
        """List every file below ``root`` (our own partial downloads left aside)."""
        root = os.path.abspath(root)
        if os.path.isfile(root):
            raise InvalidPath(f"{root!r} is a file: sync and verify take directories (use cp for a file)")
        if not os.path.isdir(root):
            if must_exist:
                raise NotFound(f"local directory {root!r} does not exist")
            return cls(root)
        files: dict[str, FileInfo] = {}
        for local, rel, size in walk_files(root):
            if _paths.basename(rel).startswith(_paths.TEMP_PREFIX):
                continue  # a download interrupted by a kill: never a file of the tree
            try:
                modified = os.stat(local).st_mtime
            except FileNotFoundError:
                continue  # removed while we walked
            files[rel] = FileInfo(rel, False, size, modified=modified)
        return cls(root, files)

    def local_path(self, rel: str) -> str:
        """Where the file ``rel`` is (or goes) on disk."""
        return _paths.local_join(self.root, rel)

    def digest(self, rel: str, algorithm: str = "sha256") -> str | None:
        """The file's digest with ``algorithm`` (None if it cannot be computed), cached."""
        key = (rel, algorithm)
        with self._lock:
            if key in self._digests:
                return self._digests[key]
        try:
            value = hash_local_file(self.local_path(rel), [algorithm]).get(algorithm)
        except FileNotFoundError:
            value = None  # removed since the listing: it compares as different
        with self._lock:
            self._digests[key] = value
        return value

    def with_digests(self, wanted: list[tuple[str, str]], workers: int) -> None:
        """Compute the digests of ``(path, algorithm)`` pairs in parallel, ahead of comparing."""
        if len(wanted) < 2:
            for rel, algorithm in wanted:
                self.digest(rel, algorithm)
            return
        with ThreadPoolExecutor(max(1, workers), thread_name_prefix="mlartifacts-hash") as pool:
            list(pool.map(lambda item: self.digest(*item), wanted))


@dataclass
class StoreTree:
    """The files below ``path`` in a store, by path relative to ``path``."""

    store: ArtifactStore
    path: str
    files: dict[str, FileInfo] = field(default_factory=dict)
    #: The entries as the backend listed them (full paths), for the engine.
    entries: dict[str, FileInfo] = field(default_factory=dict)
    #: The store path of the one file, when ``path`` names a file (``allow_file``).
    single: str | None = None

    is_local = False

    @classmethod
    def scan(
        cls, store: ArtifactStore, path: str = "", *, must_exist: bool = True, allow_file: bool = False
    ) -> StoreTree:
        """List every file below ``path`` (one recursive listing); ``allow_file``: or the file it names."""
        path = _paths.normalize(path)
        offset = len(path) + 1 if path else 0
        tree = cls(store, path)
        for info in store.iter_files(path):
            if info.is_dir:
                continue
            rel = info.path[offset:]
            tree.entries[rel] = info
            tree.files[rel] = replace(info, path=rel)
        if not tree.files:
            # An empty listing: a file, or nothing (object stores have no empty directories).
            # Refused for a source, so a mistyped URI never reads as "delete everything".
            try:
                info = store.stat(path)
            except NotFound:
                if must_exist:
                    raise NotFound(f"{store.backend.where(path)} does not exist or holds no files") from None
                return tree
            if not info.is_dir and allow_file:
                name = _paths.basename(path) if path else store.root_name
                tree.files[name] = replace(info, path=name)
                tree.entries[name] = replace(info, path=path)
                tree.single = path
            elif not info.is_dir:
                where = store.backend.where(path)
                raise InvalidPath(f"{where} is a file: sync and verify take directories (use cp for a file)")
        return tree

    def full_path(self, rel: str) -> str:
        """The store path of ``rel``."""
        return self.single if self.single is not None else _paths.join(self.path, rel)

    def digest(self, rel: str, algorithm: str = "sha256") -> str | None:
        """What the listing recorded for ``rel`` with ``algorithm``, or None."""
        info = self.files.get(rel)
        if info is None:
            return None
        if algorithm == "sha256" and info.digest:
            return info.digest.lower()
        if info.checksum is not None and info.checksum.algorithm.lower() == algorithm:
            return info.checksum.value.lower()
        return None


Tree = LocalTree | StoreTree
