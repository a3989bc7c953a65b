"""FTP and FTPS servers (``ftp://[user[:password]@]host[:port]/path``, ``ftps://...``).

Standard library only (ftplib). Logged-in connections are pooled per server and
login, never one login per file; passive mode by default; ``ftps://`` is explicit
TLS with protected data connections. Listings use MLSD where the server has it
and parse LIST where it does not (vsftpd). A path store: the core's toolkit
(:mod:`mlartifacts.pathstore`) uploads to a temporary name in the target directory
and renames it over the target (RNFR/RNTO), so nothing partial is ever visible.
Ranged reads use REST.
"""

from __future__ import annotations

import dataclasses

from mlartifacts import Capabilities, Settings
from mlartifacts.pathstore import PathStorePlugin, shared

from ._fs import FtpFS
from ._uri import FtpRoot, parse_uri

__all__ = ["FtpFS", "FtpRoot", "plugin"]


def resolve(uri: str, settings: Settings) -> tuple[FtpFS, str]:
    """The server's filesystem (one per server and login) and the root's path there."""
    root = parse_uri(uri)
    if settings.timeout is not None and settings.timeout < root.timeout:
        # The engine gives up on an operation at MLFLOW_ARTIFACT_UPLOAD_DOWNLOAD_TIMEOUT: a
        # socket waiting longer on a silent server would only keep the abandoned call (and
        # its connection) alive.
        root = dataclasses.replace(root, timeout=settings.timeout)
    key = (
        "ftp", root.host, root.port, root.user, root.password, root.tls, root.passive,
        root.timeout, root.max_connections, root.ca_file,
    )  # fmt: skip
    return shared(key, lambda: FtpFS(root)), root.path


# Reads start at any offset with REST (RFC 3659: vsftpd, ProFTPD, pure-ftpd, IIS,
# pyftpdlib...; a server without it is read from the start and the head dropped).
# Downloads stay one stream: parallel ranges would each need a data connection
# and an aborted transfer.
plugin = PathStorePlugin(
    schemes=["ftp", "ftps"], resolve=resolve, capabilities=Capabilities(ranged_read=True, single_stream=True)
)
