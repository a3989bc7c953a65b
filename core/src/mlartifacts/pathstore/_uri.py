"""URIs of remote path stores: ``scheme://[user[:password]@]host[:port]/path``, checked once."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence
from urllib.parse import unquote, urlsplit

from .._redact import redact_uri
from ..errors import InvalidUri

__all__ = ["UriParts", "split_uri"]


@dataclass(frozen=True)
class UriParts:
    """The parts of a store URI, URL-decoded (``path`` keeps its leading '/')."""

    scheme: str
    host: str  # lowercase ('' when the URI has none and none is required)
    port: int | None
    user: str | None
    password: str | None = field(repr=False)
    path: str


def split_uri(uri: str, schemes: Sequence[str], form: str, *, host_required: bool = True) -> UriParts:
    """Split and check a URI; every InvalidUri names it with the password masked.

    Refused: another scheme, a missing host (if ``host_required``), a query or a
    fragment, a port that is not a number, ``..`` segments and control characters
    in the path. ``form`` is what the message says is expected.
    """
    shown = redact_uri(uri)
    parts = urlsplit(uri)
    scheme = parts.scheme.lower()
    if scheme not in schemes or (host_required and not parts.hostname):
        raise InvalidUri(f"{shown!r}: expected {form}")
    if parts.query or parts.fragment:
        raise InvalidUri(f"{shown!r}: {scheme} URIs take no query or fragment")
    try:
        port = parts.port
    except ValueError:
        raise InvalidUri(f"{shown!r}: the port is not a number") from None
    path = unquote(parts.path)
    if any(segment == ".." for segment in path.split("/")):
        raise InvalidUri(f"{shown!r}: '..' is not allowed in the path")
    if any(c in path for c in "\r\n\0"):
        raise InvalidUri(f"{shown!r}: control characters are not allowed in the path")
    user = unquote(parts.username) if parts.username else None
    password = unquote(parts.password) if parts.password is not None else None
    return UriParts(scheme, parts.hostname or "", port, user, password, path)
