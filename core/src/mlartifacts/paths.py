"""Artifact path safety: the one place that decides what a relative artifact path may be.

Every path a user, a listing or a remote server hands to the core passes through
:func:`normalize` before it reaches a plugin, so plugins receive only clean,
relative POSIX paths ('' meaning the store root itself).
"""

from __future__ import annotations

import os
import posixpath
import re

from .errors import InvalidPath

__all__ = [
    "DIGEST_PREFIX",
    "RESERVED_PREFIXES",
    "TEMP_PREFIX",
    "basename",
    "join",
    "local_join",
    "normalize",
    "parent",
]

#: Prefix of the temporary names used while a write or download is in flight.
#: Such names are refused as artifact paths and hidden from listings.
TEMP_PREFIX = ".mlartifacts-partial-"
#: Prefix of the sidecar files in which path stores keep a file's SHA-256
#: (``.mlartifacts-sha256.<name>``, see docs/plugin-authors.md). Reserved and hidden too.
DIGEST_PREFIX = ".mlartifacts-sha256."
#: Names starting with these are never artifacts: refused as paths, hidden from listings.
RESERVED_PREFIXES = (TEMP_PREFIX, DIGEST_PREFIX)

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_DRIVE = re.compile(r"^[A-Za-z]:")


def normalize(path: str | None) -> str:
    """Return ``path`` as a clean relative POSIX path, or raise :class:`InvalidPath`.

    Collapses ``.`` segments, repeated and trailing slashes. Refuses ``..``
    segments, absolute paths, drive letters, backslashes, NUL and other control
    characters, and the reserved temporary-name prefix.
    """
    if path is None:
        return ""
    if not isinstance(path, str):
        raise InvalidPath(f"artifact path must be a string, not {type(path).__name__}")
    if _CONTROL.search(path):
        raise InvalidPath(f"invalid artifact path {path!r}: control characters are not allowed")
    if "\\" in path:
        raise InvalidPath(f"invalid artifact path {path!r}: backslashes are not allowed")
    if path.startswith("/") or _DRIVE.match(path):
        raise InvalidPath(f"invalid artifact path {path!r}: it must be relative to the store root")
    parts = [p for p in path.split("/") if p not in ("", ".")]
    for part in parts:
        if part == "..":
            raise InvalidPath(f"invalid artifact path {path!r}: '..' segments are not allowed")
        if part.startswith(RESERVED_PREFIXES):
            reserved = next(p for p in RESERVED_PREFIXES if part.startswith(p))
            raise InvalidPath(
                f"invalid artifact path {path!r}: names starting with {reserved!r} are reserved"
            )
    return "/".join(parts)


def join(*paths: str | None) -> str:
    """Join artifact paths and normalize the result ('' parts are skipped)."""
    return normalize("/".join(p for p in paths if p))


def parent(path: str) -> str:
    """The parent of a normalized artifact path ('' for top-level names)."""
    return posixpath.dirname(path)


def basename(path: str) -> str:
    """The last segment of a normalized artifact path."""
    return posixpath.basename(path)


def local_join(directory: str, path: str) -> str:
    """Place a (re-validated) artifact path under a local directory.

    Paths coming back from a backend or a remote server are checked again, so a
    hostile listing cannot write outside ``directory``.
    """
    clean = normalize(path)
    return os.path.join(directory, *clean.split("/")) if clean else directory
