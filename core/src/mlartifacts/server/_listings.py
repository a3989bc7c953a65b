"""What the server listed a moment ago: each file's size, and the walks behind paged listings.

Two uses, both bounded in entries and time:

- a batch download asks for files a client has just listed (the engine lists a tree,
  then fetches its small files in batches): their sizes, known from that listing, say
  which members may be read whole through the destination's batches without a stat
  each (one HeadObject per file on S3);
- a recursive listing served in pages walked the whole tree for every page: the
  sorted walk is kept under the position its next page starts from, so page N costs
  no walk.

Anything this server writes or deletes is forgotten at once. A change made behind
the server's back (straight to the storage) is seen when the entry expires; what it
can do meanwhile is bounded: a batch reads a member whole that has grown since the
listing (once), and a paged listing's later pages show the tree as the walk found it,
as a walk between two pages always could.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from typing import Sequence

from .._types import FileInfo

__all__ = ["Listings"]

#: Seconds a listed file's size, or a walk, is used after it was listed.
TTL = 60.0
#: Most files whose size is kept (a few hundred bytes each).
MAX_FILES = 100_000
#: Most walks kept for the pages after the first, and most entries in all of them (the
#: latest walk is kept whatever its size: its request held it whole anyway).
MAX_WALKS = 8
MAX_WALK_ENTRIES = 300_000


class Listings:
    """Sizes of files listed lately, and sorted walks awaiting their next page."""

    def __init__(self, ttl: float = TTL, max_files: int = MAX_FILES) -> None:
        self._ttl = ttl
        self._max_files = max_files
        self._files: OrderedDict[str, tuple[float, FileInfo]] = OrderedDict()
        self._walks: OrderedDict[tuple[str, str], tuple[float, Sequence[FileInfo], int]] = OrderedDict()
        self._lock = threading.Lock()

    # -- sizes of listed files -----------------------------------------------------------

    def remember(self, infos: Sequence[FileInfo]) -> None:
        """Keep the files of a listing (newest last; the oldest go past the bound)."""
        now = time.monotonic()
        with self._lock:
            for info in infos:
                if not info.is_dir and info.file_size is not None:
                    self._files[info.path] = (now, info)
                    self._files.move_to_end(info.path)
            while len(self._files) > self._max_files:
                self._files.popitem(last=False)

    def file(self, path: str) -> FileInfo | None:
        """The file at ``path`` as listed within the last ``TTL`` seconds, else None."""
        with self._lock:
            found = self._files.get(path)
            if found is None:
                return None
            if time.monotonic() - found[0] >= self._ttl:
                del self._files[path]
                return None
            return found[1]

    def forget(self, path: str, tree: bool = False) -> None:
        """This server wrote ``path``, or deleted it (``tree``: with everything below it)."""
        with self._lock:
            self._files.pop(path, None)
            if tree and self._files:
                below = f"{path}/" if path else ""
                for p in [p for p in self._files if p.startswith(below)]:
                    del self._files[p]
            self._walks.clear()  # a page after this shows the tree as it is now

    # -- walks of paged recursive listings -----------------------------------------------

    def keep_walk(self, key: tuple[str, str], entries: Sequence[FileInfo], start: int) -> None:
        """Keep a sorted walk; the page named by ``key`` starts at ``entries[start]``."""
        now = time.monotonic()
        with self._lock:
            self._walks[key] = (now, entries, start)
            self._walks.move_to_end(key)
            while len(self._walks) > MAX_WALKS or (
                len(self._walks) > 1 and sum(len(w[1]) for w in self._walks.values()) > MAX_WALK_ENTRIES
            ):
                self._walks.popitem(last=False)

    def take_walk(self, key: tuple[str, str]) -> tuple[Sequence[FileInfo], int] | None:
        """The walk whose next page ``key`` names (then no longer kept), if still fresh."""
        with self._lock:
            found = self._walks.pop(key, None)
        if found is None or time.monotonic() - found[0] >= self._ttl:
            return None
        return found[1], found[2]
