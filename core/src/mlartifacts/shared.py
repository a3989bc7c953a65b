"""One object per key in this process: SDK clients and filesystems made once and shared.

Plugins keep their clients here, keyed by everything that makes two differ
(endpoint, credentials, timeouts, pool sizes), so every root resolved with the same
settings reuses one client and its connection pool::

    _clients: SharedCache[S3Config, S3Client] = SharedCache(limit=32)

    def get_client(config: S3Config) -> S3Client:
        return _clients.get(config, lambda: _make_client(config))
"""

from __future__ import annotations

import threading
from typing import Callable, Generic, Hashable, TypeVar

__all__ = ["SharedCache"]

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class SharedCache(Generic[K, V]):
    """Objects by key, each made once even when many threads ask at once.

    With a ``limit``, the oldest entry is dropped when a new one would exceed it
    (settings rarely change within a process; a long-running server that sees many
    would otherwise keep every client it ever made).
    """

    def __init__(self, limit: int | None = None) -> None:
        self._items: dict[K, V] = {}
        self._lock = threading.Lock()
        self._limit = limit

    def get(self, key: K, make: Callable[[], V]) -> V:
        """The object for ``key``, made by ``make`` (under the cache's lock) the first time."""
        found = self._items.get(key)
        if found is None:
            with self._lock:
                found = self._items.get(key)
                if found is None:
                    found = make()
                    if self._limit is not None and len(self._items) >= self._limit:
                        del self._items[next(iter(self._items))]
                    self._items[key] = found
        return found

    def __len__(self) -> int:
        return len(self._items)

    def values(self) -> list[V]:
        """The objects now held (a copy)."""
        with self._lock:
            return list(self._items.values())
