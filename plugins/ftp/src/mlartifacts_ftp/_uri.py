"""``ftp://`` and ``ftps://`` URIs."""

from __future__ import annotations

import posixpath
from dataclasses import dataclass, field
from urllib.parse import unquote, urlsplit

from mlartifacts.config import env_bool, env_float, env_int, env_str
from mlartifacts.errors import InvalidUri

__all__ = ["FtpRoot", "parse_uri"]

DEFAULT_PORT = 21


@dataclass(frozen=True)
class FtpRoot:
    """A directory on an FTP server and how to log in there.

    ``path`` is absolute on the server (as MLflow reads ``ftp://host/path``); a
    chrooted login sees its own root as ``/``.
    """

    host: str
    port: int
    user: str  # "anonymous" when the URI names none
    path: str
    password: str = field(default="", repr=False)
    tls: bool = False  # ftps://: explicit TLS (AUTH TLS), data connections protected
    passive: bool = True
    timeout: float = 60.0
    max_connections: int = 4
    ca_file: str | None = None

    @property
    def display(self) -> str:
        """The root as a URI, without the password."""
        scheme = "ftps" if self.tls else "ftp"
        user = "" if self.user == "anonymous" else f"{self.user}@"
        port = "" if self.port == DEFAULT_PORT else f":{self.port}"
        return f"{scheme}://{user}{self.host}{port}{self.path}"

    def remote(self, path: str) -> str:
        """The server-side path of an artifact path ('' is the root)."""
        return posixpath.join(self.path, path) if path else self.path


def parse_uri(uri: str) -> FtpRoot:
    """``ftp[s]://[user[:password]@]host[:port]/path``; the password is URL-decoded."""
    parts = urlsplit(uri)
    scheme = parts.scheme.lower()
    shown = _redact(uri)
    if scheme not in ("ftp", "ftps") or not parts.hostname:
        raise InvalidUri(f"{shown!r}: expected ftp://[user[:password]@]host[:port]/path (or ftps://)")
    if parts.query or parts.fragment:
        raise InvalidUri(f"{shown!r}: ftp URIs take no query or fragment")
    try:
        port = parts.port or DEFAULT_PORT
    except ValueError:
        raise InvalidUri(f"{shown!r}: the port is not a number") from None
    raw = unquote(parts.path)
    path = posixpath.normpath("/" + raw.lstrip("/"))
    if any(segment == ".." for segment in raw.split("/")):
        raise InvalidUri(f"{shown!r}: '..' is not allowed in the path")
    if any(c in path for c in "\r\n\0"):
        raise InvalidUri(f"{shown!r}: control characters are not allowed in the path")
    user = unquote(parts.username) if parts.username else "anonymous"
    if parts.password is not None:
        password = unquote(parts.password)
    else:
        password = "anonymous@" if user == "anonymous" else ""
    return FtpRoot(
        host=parts.hostname,
        port=port,
        user=user,
        path=path,
        password=password,
        tls=scheme == "ftps",
        passive=env_bool("MLARTIFACTS_FTP_PASSIVE", True),
        timeout=env_float("MLARTIFACTS_FTP_TIMEOUT", 60.0) or 60.0,
        max_connections=env_int("MLARTIFACTS_FTP_MAX_CONNECTIONS", 4, minimum=1),
        ca_file=env_str("MLARTIFACTS_FTP_CA_FILE"),
    )


def _redact(uri: str) -> str:
    parts = urlsplit(uri)
    if parts.password is None:
        return uri
    return uri.replace(f":{parts.password}@", ":***@", 1)
