"""Where an ``http(s)://`` or ``mlflow-artifacts:`` URI points: the service's API and a root path."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from urllib.parse import quote, unquote, urlsplit

from .. import paths
from ..errors import InvalidPath, InvalidUri

__all__ = ["HttpRoot", "resolve"]

ANCHOR = "/mlflow-artifacts/artifacts"


@dataclass(frozen=True)
class HttpRoot:
    """A root on an artifacts service.

    Attributes:
        api: ``<scheme>://<host>[/<prefix>]/api/2.0/mlflow-artifacts``: base of every route.
        path: the root's path below the service's destination ('' for the top).
        server_info: the ``/api/3.0/mlflow/server-info`` URL, when the API path has the usual shape.
        proxied: an ``mlflow-artifacts:`` URI, whose multipart defaults come from server-info.
    """

    api: str
    path: str
    server_info: str | None
    proxied: bool

    def full(self, path: str) -> str:
        """A store-relative path as a path below the destination."""
        return paths.join(self.path, path)

    def url(self, route: str, path: str = "") -> str:
        """``<api>/<route>/<quoted path>``."""
        full = self.full(path)
        return f"{self.api}/{route}/{quote(full)}" if full else f"{self.api}/{route}"

    @property
    def list_url(self) -> str:
        return f"{self.api}/artifacts"


def _root(scheme: str, netloc: str, url_path: str, proxied: bool, uri: str) -> HttpRoot:
    url_path = re.sub("/+", "/", url_path)
    head, anchor, tail = url_path.partition(ANCHOR)
    if not anchor or (tail and not tail.startswith("/")):
        raise InvalidUri(
            f"{uri!r} is not an artifacts-service URI: expected "
            f"{scheme}://<host>[/<prefix>]/api/2.0/mlflow-artifacts/artifacts[/<path>]"
        )
    try:
        root_path = paths.normalize(unquote(tail.strip("/")))
    except InvalidPath as exc:
        raise InvalidUri(f"{uri!r}: {exc}") from None
    api = f"{scheme}://{netloc}{head}/mlflow-artifacts"
    info = None
    for version in ("/api/2.0", "/ajax-api/2.0"):
        if head.endswith(version):
            v3 = version.replace("2.0", "3.0")
            info = f"{scheme}://{netloc}{head[: -len(version)]}{v3}/mlflow/server-info"
    return HttpRoot(api, root_path, info, proxied)


def resolve(uri: str, tracking_uri: str | None = None) -> HttpRoot:
    """Resolve ``http(s)://...`` or ``mlflow-artifacts:...`` (against ``MLFLOW_TRACKING_URI``)."""
    parts = urlsplit(uri)
    if parts.query or parts.fragment:
        raise InvalidUri(f"{uri!r}: artifact URIs take no query or fragment")
    scheme = parts.scheme.lower()
    if scheme in ("http", "https"):
        if not parts.netloc:
            raise InvalidUri(f"{uri!r} has no host")
        return _root(scheme, parts.netloc, parts.path, False, uri)
    tracking = tracking_uri if tracking_uri is not None else os.environ.get("MLFLOW_TRACKING_URI", "")
    track = urlsplit(tracking)
    if track.scheme not in ("http", "https") or not track.netloc:
        raise InvalidUri(
            f"{uri!r} is resolved against MLFLOW_TRACKING_URI, which must be the http(s) address of "
            f"the tracking or artifacts server (got {tracking!r})"
        )
    if parts.netloc and parts.hostname and parts.hostname.isdigit() and parts.port is None:
        raise InvalidUri(
            f"{uri!r}: {parts.netloc!r} is not a host (an experiment id after '//'? "
            "write mlflow-artifacts:/<path>)"
        )
    path = parts.path
    if path in ("", "/"):
        path = "/api/2.0" + ANCHOR
    elif not path.startswith("/api/2.0" + ANCHOR):
        path = f"{track.path.rstrip('/')}/api/2.0{ANCHOR}/{path.lstrip('/')}"
    return _root(track.scheme, parts.netloc or track.netloc, path, True, uri)
