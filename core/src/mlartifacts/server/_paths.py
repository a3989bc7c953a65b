"""Path safety for requests: what MLflow's server refuses, refused here too, before the core's own checks."""

from __future__ import annotations

import re
from urllib.parse import unquote

from .. import paths
from ..errors import InvalidPath

__all__ = ["member_path", "request_path"]

_DECODE_ROUNDS = 10
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_DRIVE = re.compile(r"^[A-Za-z]:")


def request_path(raw: str | None, *, allow_empty: bool = True) -> str:
    """The clean artifact path a request names, or :class:`InvalidPath` ("Invalid path").

    Percent-decodes until the value is stable (so ``%252E%252E`` is caught), then
    refuses ``..`` segments, absolute paths, drive letters, backslashes, ``#``,
    control characters and NUL; the core then normalizes it.
    """
    value = raw or ""
    for _ in range(_DECODE_ROUNDS):
        decoded = unquote(value)
        if decoded == value:
            break
        value = decoded
    else:
        raise InvalidPath(f"Invalid path: {raw!r} is encoded too many times")
    if _unsafe(value):
        raise InvalidPath(f"Invalid path: {raw!r}")
    clean = paths.normalize(value)
    if not clean and not allow_empty:
        raise InvalidPath("Invalid path: an artifact path is required")
    return clean


def member_path(name: str) -> str:
    """The clean path a batch member names (taken literally: no percent-decoding)."""
    if _unsafe(name):
        raise InvalidPath(f"Invalid path: batch member {name!r}")
    clean = paths.normalize(name)
    if not clean:
        raise InvalidPath(f"Invalid path: batch member {name!r} names no file")
    return clean


def _unsafe(value: str) -> bool:
    return bool(
        _CONTROL.search(value)
        or "\\" in value
        or "#" in value
        or value.startswith("/")
        or _DRIVE.match(value)
        or ".." in value.split("/")
    )
