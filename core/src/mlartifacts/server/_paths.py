"""Path safety for requests: what MLflow's server refuses, refused here too, before the core's own checks."""

from __future__ import annotations

import re
from urllib.parse import unquote

from .. import paths
from ..errors import InvalidPath

__all__ = ["MAX_NAME_BYTES", "MAX_PATH_BYTES", "member_path", "request_path"]

#: Longest name of one path component, and of a whole path, in UTF-8 bytes: the limits of
#: Linux filesystems (NAME_MAX, PATH_MAX). Longer names could never be downloaded to a
#: client's disk, and a backend on a filesystem would answer them with an OS error.
MAX_NAME_BYTES = 255
MAX_PATH_BYTES = 4096
_SHOWN = 120  # characters of a refused path echoed back in the message

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
        raise InvalidPath(f"Invalid path: {_shown(raw)} is encoded too many times")
    if _unsafe(value):
        raise InvalidPath(f"Invalid path: {_shown(raw)}")
    clean = _within_limits(paths.normalize(value))
    if not clean and not allow_empty:
        raise InvalidPath("Invalid path: an artifact path is required")
    return clean


def member_path(name: str, directory: str = "") -> str:
    """The clean path a batch member names below ``directory`` (taken literally: no percent-decoding)."""
    if _unsafe(name):
        raise InvalidPath(f"Invalid path: batch member {_shown(name)}")
    clean = _within_limits(paths.normalize(name))
    if not clean:
        raise InvalidPath(f"Invalid path: batch member {_shown(name)} names no file")
    return _within_limits(paths.join(directory, clean))


def _within_limits(clean: str) -> str:
    if len(clean.encode()) > MAX_PATH_BYTES:
        raise InvalidPath(f"Invalid path: {_shown(clean)} is longer than {MAX_PATH_BYTES} bytes")
    for part in clean.split("/"):
        if len(part.encode()) > MAX_NAME_BYTES:
            raise InvalidPath(f"Invalid path: the name {_shown(part)} is longer than {MAX_NAME_BYTES} bytes")
    return clean


def _shown(value: str | None) -> str:
    text = value or ""
    return repr(text) if len(text) <= _SHOWN else repr(text[:_SHOWN]) + f"... ({len(text)} characters)"


def _unsafe(value: str) -> bool:
    return bool(
        _CONTROL.search(value)
        or "\\" in value
        or "#" in value
        or value.startswith("/")
        or _DRIVE.match(value)
        or ".." in value.split("/")
    )
