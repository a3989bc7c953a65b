"""Memory backends for the sync and verify tests: one that records SHA-256 digests, one that records none.

``DigestMemory`` records each object's digest when it is written (as backends do
once they carry ``FileInfo.digest``) and returns it from stat and list, so a byte
changed behind its back (``corrupt``) no longer matches. ``BareMemory`` reports
neither a digest nor a checksum: comparisons fall back to sizes. Both hold
whether or not the reference memory backend records digests itself.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Iterator
from typing import Any

from mlartifacts import FileInfo, PluginRegistry, hookimpl
from mlartifacts.testing import MemoryBackend
from mlartifacts.testing.memory import MemoryRoot


class DigestMemory(MemoryBackend):
    """The memory backend, recording the SHA-256 of what is written to it."""

    def __init__(self, scheme: str = "dmem", **kwargs: object) -> None:
        super().__init__(scheme=scheme, **kwargs)  # type: ignore[arg-type]
        self.digests: dict[tuple[str, str], str] = {}

    def _put(self, root: MemoryRoot, path: str, data: bytes, *args: Any, **kwargs: Any) -> None:
        super()._put(root, path, data, *args, **kwargs)  # whatever else the reference records
        with self._lock:
            self.digests[(root.bucket, root.key(path))] = hashlib.sha256(data).hexdigest()

    def _with_digest(self, root: MemoryRoot, info: FileInfo) -> FileInfo:
        if info.is_dir:
            return info
        with self._lock:
            digest = self.digests.get((root.bucket, root.key(info.path)))
        return dataclasses.replace(info, digest=digest)

    def corrupt(self, bucket: str, key: str) -> None:
        """Flip a byte of a stored object, leaving its recorded digest and checksum as they were."""
        with self._lock:
            obj = self._buckets[bucket][key]
            obj.data = bytes([obj.data[0] ^ 0xFF]) + obj.data[1:]

    @hookimpl
    def stat(self, root: MemoryRoot, path: str) -> FileInfo:
        return self._with_digest(root, super().stat(root, path))

    @hookimpl(specname="list")
    def list_entries(self, root: MemoryRoot, path: str, recursive: bool) -> Iterator[FileInfo]:
        for info in super().list_entries(root, path, recursive):
            yield self._with_digest(root, info)


class BareMemory(MemoryBackend):
    """The memory backend, reporting neither digests nor checksums (sizes only)."""

    def __init__(self, scheme: str = "bare", **kwargs: object) -> None:
        super().__init__(scheme=scheme, **kwargs)  # type: ignore[arg-type]

    @staticmethod
    def _bare(info: FileInfo) -> FileInfo:
        return dataclasses.replace(info, digest=None, checksum=None, etag=None)

    @hookimpl
    def stat(self, root: MemoryRoot, path: str) -> FileInfo:
        return self._bare(super().stat(root, path))

    @hookimpl(specname="list")
    def list_entries(self, root: MemoryRoot, path: str, recursive: bool) -> Iterator[FileInfo]:
        for info in super().list_entries(root, path, recursive):
            yield self._bare(info)


def registry_with(*plugins: MemoryBackend) -> PluginRegistry:
    """A fresh registry holding these plugins (and the local disk's, for local paths)."""
    registry = PluginRegistry()
    for plugin in plugins:
        registry.register(plugin, plugin.scheme)
    return registry
