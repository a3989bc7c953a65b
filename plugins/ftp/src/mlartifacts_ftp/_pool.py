"""Logged-in control connections, pooled per server and login.

At most ``MLARTIFACTS_FTP_MAX_CONNECTIONS`` (default 4) per server and login; a
server that answers a new login with 421 ("too many connections") lowers that
limit to what this process already holds. A connection idle for a while is
checked with NOOP before reuse, and one idle longer than servers usually allow
(vsftpd drops them after 300 s) is closed instead.
"""

from __future__ import annotations

import ftplib
from typing import TYPE_CHECKING, cast

from mlartifacts.pathstore import PathRoot, reusable_unless
from mlartifacts.pool import SessionPool

from ._client import Connection, connect
from ._errors import connection_lost, reply_code
from ._uri import FtpRoot

if TYPE_CHECKING:
    from ._fs import FtpFS

__all__ = ["make_pool", "pool_for", "reusable"]

#: Whether a connection that raised an exception is still in step with its server.
reusable = reusable_unless(connection_lost, (ftplib.Error,))


def _alive(connection: Connection) -> bool:
    connection.ftp.voidcmd("NOOP")
    return True


def _refused(exc: BaseException) -> bool:
    return reply_code(exc) == "421"


def make_pool(root: FtpRoot) -> SessionPool[Connection]:
    """A connection pool for the server and login of ``root``."""
    return SessionPool(
        lambda: connect(root),
        close=Connection.close,
        max_size=root.max_connections,
        alive=_alive,
        reusable=reusable,
        refused=_refused,
        check_after=15.0,
        max_idle=240.0,
        name=f"ftp {root.user}@{root.host}:{root.port}",
    )


def pool_for(root: PathRoot) -> SessionPool[Connection]:
    """The connection pool behind a store's root (``ArtifactStore(...).backend.root``)."""
    return cast("FtpFS", root.fs).pool
