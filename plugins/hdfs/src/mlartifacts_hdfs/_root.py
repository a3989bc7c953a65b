"""HDFS URIs: ``hdfs://host:port/path``, ``hdfs:///path`` (the default namenode), ``viewfs://cluster/path``."""

from __future__ import annotations

import posixpath
from urllib.parse import unquote, urlsplit

from mlartifacts.errors import ConfigError, InvalidUri

from ._client import Namenode, default_fs

__all__ = ["SCHEMES", "check_default_fs", "parse_uri"]

SCHEMES = ("hdfs", "viewfs")


def parse_uri(uri: str) -> tuple[Namenode, str]:
    """The namenode a URI names and the absolute HDFS path of its root.

    ``hdfs:/path`` and ``hdfs:///path`` use ``fs.defaultFS`` from ``core-site.xml`` (pyarrow
    cannot connect to an empty authority, so the host becomes ``"default"``). A
    ``viewfs://`` URI names a mount table of the configuration, resolved by Hadoop.
    """
    parts = urlsplit(uri)
    scheme = parts.scheme.lower()
    if scheme not in SCHEMES:
        raise InvalidUri(f"{uri!r} is not an hdfs:// or viewfs:// URI")
    if parts.query or parts.fragment:
        raise InvalidUri(
            f"{uri!r}: HDFS URIs take no query or fragment (the user and Hadoop settings come from "
            "MLFLOW_KERBEROS_USER and MLFLOW_PYARROW_EXTRA_CONF)"
        )
    if "@" in parts.netloc:
        raise InvalidUri(f"{uri!r}: HDFS URIs carry no user (set MLFLOW_KERBEROS_USER)")
    try:
        port = parts.port or 0
    except ValueError:
        raise InvalidUri(f"{uri!r}: the port is not a number between 0 and 65535") from None
    host = parts.hostname or ""
    path = unquote(parts.path)
    if "\0" in path:
        raise InvalidUri(f"{uri!r} is not a usable path")
    if ".." in path.split("/"):
        raise InvalidUri(f"{uri!r}: '..' is not allowed in the root path")
    path = posixpath.normpath("/" + path.lstrip("/"))
    if not host:
        if port:
            raise InvalidUri(f"{uri!r} names a port but no host")
        if scheme == "viewfs":
            raise InvalidUri(f"{uri!r}: a viewfs:// URI names its mount table (viewfs://cluster/path)")
        return Namenode("default"), path
    if scheme == "viewfs":
        if port:
            raise InvalidUri(f"{uri!r}: a viewfs:// URI names a mount table, not a host and port")
        return Namenode(f"viewfs://{host}"), path
    authority = f"[{host}]" if ":" in host else host  # an IPv6 address
    return Namenode(f"hdfs://{authority}", port), path


def check_default_fs(uri: str) -> None:
    """Refuse ``hdfs:///path`` unless the configuration names an HDFS default filesystem.

    Without ``fs.defaultFS``, Hadoop's default is the local disk (``file:///``): the
    URI would quietly write there instead of to HDFS.
    """
    found = default_fs()
    if found is None:
        raise ConfigError(
            f"{uri!r} uses the default namenode (fs.defaultFS of core-site.xml), but no core-site.xml "
            "on the CLASSPATH sets it: add the Hadoop configuration folder to CLASSPATH "
            "(hadoop classpath --glob includes it), or name the namenode: hdfs://host:port/path"
        )
    if urlsplit(found).scheme.lower() not in SCHEMES:
        raise ConfigError(
            f"{uri!r} uses the default namenode, but fs.defaultFS in core-site.xml is {found!r}, "
            "not an HDFS namenode: name it in the URI (hdfs://host:port/path)"
        )
