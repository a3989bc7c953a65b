"""One logged-in FTP control connection, and what it knows about its server.

ftplib does the protocol; this adds what a pool of long-lived connections needs:
the server's features (FEAT: MLST, UTF8, REST STREAM) asked once, the transfer
type tracked so binary transfers do not each send ``TYPE I``, and TLS session
reuse on data connections (vsftpd's default ``require_ssl_reuse`` refuses data
connections that start a new TLS session).
"""

from __future__ import annotations

import ftplib
import socket
import ssl
import time
from typing import Any

from ._uri import FtpRoot

__all__ = ["Connection", "connect"]


class _FtpTls(ftplib.FTP_TLS):
    """FTP_TLS whose data connections resume the control connection's TLS session."""

    protected = False

    def prot_p(self) -> str:
        reply = super().prot_p()
        self.protected = True
        return reply

    def ntransfercmd(self, cmd: str, rest: int | str | None = None) -> tuple[socket.socket, int | None]:
        conn, size = ftplib.FTP.ntransfercmd(self, cmd, rest)  # a plain socket: wrapped here
        if self.protected:
            session = getattr(self.sock, "session", None)
            conn = self.context.wrap_socket(conn, server_hostname=self.host, session=session)
        return conn, size


class Connection:
    """A logged-in control connection with the server's features."""

    def __init__(self, ftp: ftplib.FTP, root: FtpRoot) -> None:
        self.ftp = ftp
        self.root = root
        self.features = _features(ftp)
        self.mlst = "MLST" in self.features
        self.rest = "REST STREAM" in self.features or "REST" in self.features
        self.list_all = True  # LIST -a (shows dot files) until the server refuses it
        self.type = ""
        self.last_used = time.monotonic()

    def binary(self) -> None:
        """Switch to binary (image) transfers, unless already there."""
        if self.type != "I":
            self.ftp.voidcmd("TYPE I")
            self.type = "I"

    def text_listing(self) -> None:
        """ftplib's line-based commands (mlsd, retrlines) send TYPE A themselves."""
        self.type = "A"

    # The one-call primitives (mlartifacts.pathstore.Commands), in FTP's words.
    def remove(self, path: str) -> None:
        self.ftp.delete(path)

    def rmdir(self, path: str) -> None:
        self.ftp.rmd(path)

    def mkdir(self, path: str) -> None:
        self.ftp.mkd(path)

    def close(self) -> None:
        try:
            self.ftp.quit()
        except Exception:  # noqa: BLE001 - a dead connection cannot say goodbye
            self.ftp.close()


def connect(root: FtpRoot) -> Connection:
    """Open, secure (ftps) and log in a control connection; raises ftplib/socket errors."""
    ftp: ftplib.FTP
    if root.tls:
        context = ssl.create_default_context(cafile=root.ca_file)
        ftp = _FtpTls(context=context, timeout=root.timeout)
    else:
        ftp = ftplib.FTP(timeout=root.timeout)
    ftp.encoding = "utf-8"
    try:
        ftp.connect(root.host, root.port)
        if isinstance(ftp, ftplib.FTP_TLS):
            ftp.auth()
        ftp.login(root.user, root.password)
        if isinstance(ftp, ftplib.FTP_TLS):
            ftp.prot_p()
        ftp.set_pasv(root.passive)
        connection = Connection(ftp, root)
        if "UTF8" in connection.features:
            _ignore_refusal(ftp, "OPTS UTF8 ON")  # some servers only speak UTF-8 when asked
        connection.binary()
    except BaseException:
        ftp.close()
        raise
    return connection


def _features(ftp: ftplib.FTP) -> set[str]:
    try:
        reply = ftp.sendcmd("FEAT")
    except ftplib.Error:
        return set()
    lines = reply.splitlines()[1:-1]  # between "211-Features:" and "211 End"
    features = set()
    for line in lines:
        feature = line.strip().upper()
        features.add(feature)
        features.add(feature.split(" ", 1)[0])
    return features


def _ignore_refusal(ftp: ftplib.FTP, command: str) -> Any:
    try:
        return ftp.sendcmd(command)
    except ftplib.error_perm:
        return None
