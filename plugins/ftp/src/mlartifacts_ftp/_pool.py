"""Logged-in control connections, pooled per server and login.

At most ``MLARTIFACTS_FTP_MAX_CONNECTIONS`` (default 4) per server and login; a
server that answers a new login with 421 ("too many connections") lowers that
limit to what this process already holds. A connection idle for a while is
checked with NOOP before reuse, and one idle longer than servers usually allow
(vsftpd drops them after 300 s) is closed instead.
"""

from __future__ import annotations

import ftplib
import threading

from mlartifacts.errors import ArtifactError
from mlartifacts.pool import SessionPool

from ._client import Connection, connect
from ._errors import connection_lost, reply_code
from ._uri import FtpRoot

__all__ = ["pool_for", "reusable"]


def reusable(exc: BaseException) -> bool:
    """Whether a connection that raised ``exc`` is still in step with its server."""
    if isinstance(exc, ArtifactError):
        return not exc.transient
    return isinstance(exc, ftplib.Error) and not connection_lost(exc)


def _alive(connection: Connection) -> bool:
    connection.ftp.voidcmd("NOOP")
    return True


def _refused(exc: BaseException) -> bool:
    return reply_code(exc) == "421"


_POOLS: dict[tuple[object, ...], SessionPool[Connection]] = {}
_POOLS_LOCK = threading.Lock()


def pool_for(root: FtpRoot) -> SessionPool[Connection]:
    """The connection pool for the server and login of ``root``."""
    key = (
        root.host, root.port, root.user, root.password, root.tls, root.passive,
        root.timeout, root.max_connections, root.ca_file,
    )  # fmt: skip
    with _POOLS_LOCK:
        pool = _POOLS.get(key)
        if pool is None:
            known_dirs: set[str] = set()  # shared: a directory made on one connection exists for all

            def create() -> Connection:
                connection = connect(root)
                connection.known_dirs = known_dirs
                return connection

            pool = _POOLS[key] = SessionPool(
                create,
                close=Connection.close,
                max_size=root.max_connections,
                alive=_alive,
                reusable=reusable,
                refused=_refused,
                check_after=15.0,
                max_idle=240.0,
                name=f"ftp {root.user}@{root.host}:{root.port}",
            )
        return pool
