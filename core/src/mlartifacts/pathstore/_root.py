"""A path store's root: the shared filesystem object, the base path on it, and its name in messages."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Hashable, TypeVar

from ..shared import SharedCache
from ._protocol import PathFileSystem

__all__ = ["PathRoot", "shared"]

T = TypeVar("T")

_SHARED: SharedCache[Hashable, object] = SharedCache()


def shared(key: Hashable, make: Callable[[], T]) -> T:
    """The one object made by ``make`` for ``key`` in this process (a filesystem per server and login).

    The key holds everything that makes two objects differ (host, port, user,
    password, timeouts, pool sizes...), so roots that may share one do. ``make``
    runs under a process-wide lock: it should be quick (connect on first use).
    """
    return _SHARED.get(key, make)  # type: ignore[return-value]


@dataclass(frozen=True)
class PathRoot:
    """What a path store's ``resolve_uri`` returns: every other hook receives it back.

    ``display`` is the URI with any password masked: the one name the toolkit's
    messages give this root (the core's own messages use the same). ``digests`` is
    ``MLARTIFACTS_DIGESTS``: False, uploads are neither hashed nor recorded.
    """

    fs: PathFileSystem
    base: str
    display: str
    digests: bool = True

    def path(self, rel: str) -> str:
        """The store path of an artifact path ('' is the root itself)."""
        return self.fs.join(self.base, rel)

    def where(self, rel: str) -> str:
        """A location for messages: the URI with ``rel`` appended."""
        return f"{self.display.rstrip('/')}/{rel}" if rel else self.display
