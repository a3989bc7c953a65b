"""``ftp://`` and ``ftps://`` URIs."""

from __future__ import annotations

import posixpath
from dataclasses import dataclass, field

from mlartifacts.config import env_bool, env_float, env_int, env_str
from mlartifacts.pathstore import split_uri

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


def parse_uri(uri: str) -> FtpRoot:
    """``ftp[s]://[user[:password]@]host[:port]/path``; the password is URL-decoded."""
    parts = split_uri(uri, ("ftp", "ftps"), "ftp://[user[:password]@]host[:port]/path (or ftps://)")
    user = parts.user or "anonymous"
    anonymous = "anonymous@" if user == "anonymous" else ""  # the customary anonymous password
    password = parts.password if parts.password is not None else anonymous
    return FtpRoot(
        host=parts.host,
        port=parts.port or DEFAULT_PORT,
        user=user,
        path=posixpath.normpath("/" + parts.path.lstrip("/")),
        password=password,
        tls=parts.scheme == "ftps",
        passive=env_bool("MLARTIFACTS_FTP_PASSIVE", True),
        timeout=env_float("MLARTIFACTS_FTP_TIMEOUT", 60.0) or 60.0,
        max_connections=env_int("MLARTIFACTS_FTP_MAX_CONNECTIONS", 4, minimum=1),
        ca_file=env_str("MLARTIFACTS_FTP_CA_FILE"),
    )
