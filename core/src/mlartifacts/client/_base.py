"""What every part of the service client shares: its state, requests, server-info and listings."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

from .. import paths
from ..errors import ArtifactError, InvalidPath
from ._http import ServerInfo, check, request, transport_error
from ._settings import ClientSettings
from ._uri import HttpRoot

__all__ = ["CHUNK", "ClientBase", "Root", "Upload"]

CHUNK = 1024 * 1024
# Entries per page of a recursive listing. The server walks the tree again for each page
# (no start-after marker reaches the backends yet), so pages are large: a 10,000-file
# tree is one walk (about 1 MB of JSON), not ten.
_PAGE = 10_000
_PRESIGNED_REUSE = 120.0  # seconds a presigned download URL is reused (the server grants 300 by default)
#: Seconds a service whose storage this client could not reach is served through the
#: server only, before presigned transfers are tried again.
_UNREACHABLE_FOR = 300.0


def _safe_name(name: str, nested: bool) -> bool:
    """Whether a name from a listing stays where it was listed (a hostile server could say ``../x``)."""
    try:
        clean = paths.normalize(name)
    except InvalidPath:
        return False
    return bool(clean) and clean == name and (nested or "/" not in name)


@dataclass(frozen=True)
class Root:
    """A root on a service, with the settings read when it was resolved."""

    http: HttpRoot
    settings: ClientSettings = field(compare=False)


@dataclass
class Upload:
    """A proxied multipart upload this process knows: the server's id and its parts' URLs."""

    server_id: str | None
    credentials: dict[int, tuple[str, dict[str, str]]]


class ClientBase:
    """The client's state (server-info, reachability, presigned URLs, uploads) and its requests."""

    def __init__(self) -> None:
        self.server_info = ServerInfo()
        self._uploads: dict[str, Upload] = {}
        self._presigned: dict[tuple[str, str], tuple[float, str, dict[str, str]]] = {}
        self._reached: set[str] = set()  # storage hosts that have answered this client
        self._unreachable: dict[str, float] = {}  # service API -> when its storage was unreachable
        self._lock = threading.Lock()

    def reset(self) -> None:
        """Forget what was learnt about servers and storages (server-info, reachability, URLs)."""
        self.server_info.clear()
        with self._lock:
            self._presigned.clear()
            self._reached.clear()
            self._unreachable.clear()

    def _info(self, root: Root) -> dict[str, Any]:
        s = root.settings
        return self.server_info.get(root.http.server_info, s.headers, s.verify, s.cert)

    def _request(
        self,
        root: Root,
        method: str,
        url: str,
        what: str,
        *,
        stream: bool = False,
        accept: tuple[int, ...] = (),
        **kwargs: Any,
    ) -> Any:
        s = root.settings
        headers = {**s.headers, **kwargs.pop("headers", {})}
        try:
            response = request(
                method,
                url,
                headers=headers,
                verify=s.verify,
                cert=s.cert,
                timeout=s.timeout,
                stream=stream,
                **kwargs,
            )
        except ArtifactError:
            raise
        except Exception as exc:
            raise transport_error(exc, what, url) from exc
        return check(response, what, accept)

    def _presigned_ok(self, root: Root) -> bool:
        """Whether presigned transfers may be tried (the storage was not found unreachable lately)."""
        with self._lock:
            since = self._unreachable.get(root.http.api)
            if since is not None and time.monotonic() - since >= _UNREACHABLE_FOR:
                del self._unreachable[root.http.api]
                since = None
        return since is None

    def _extension(self, root: Root, name: str) -> bool:
        """Whether the server is ours and offers ``name`` (a key of its server-info extras)."""
        extras = self._info(root).get("mlartifacts")
        return isinstance(extras, dict) and extras.get(name) is True

    def _multipart_uploads(self, root: Root) -> bool:
        """Presigned multipart uploads: as MLflow's variable says, else as the server advertises."""
        forced = root.settings.proxy_upload
        if forced is not None:
            return forced and self._presigned_ok(root)
        return (
            root.settings.presigned
            and self._info(root).get("multipart_uploads_enabled") is True
            and self._presigned_ok(root)
        )

    def _multipart_downloads(self, root: Root) -> bool:
        """Presigned (ranged) downloads: as MLflow's variable says, else as the server advertises."""
        forced = root.settings.proxy_download
        if forced is not None:
            return forced and self._presigned_ok(root)
        return (
            root.settings.presigned
            and self._info(root).get("multipart_downloads_enabled") is True
            and self._presigned_ok(root)
        )

    def _children(self, root: Root, full: str, recursive: bool = False) -> list[dict[str, Any]]:
        """The raw entries of one directory on the server (every page).

        With ``recursive`` (only for servers that advertise it), every file below
        ``full``, named by its relative path, in pages of ``_PAGE``.
        """
        params: dict[str, str] = {"path": full}
        if "mlartifacts" in self._info(root):
            params["details"] = "true"  # our server adds each file's digest
        if recursive:
            params.update(recursive="true", max_results=str(_PAGE))
        found: list[dict[str, Any]] = []
        while True:
            body = self._request(root, "GET", root.http.list_url, f"list {full or '/'}", params=params).json()
            for entry in body.get("files", []) if isinstance(body, dict) else []:
                name = entry.get("path") if isinstance(entry, dict) else None
                if isinstance(name, str) and _safe_name(name, recursive):
                    found.append(entry)
            token = body.get("next_page_token") if isinstance(body, dict) else None
            if not token:
                return found
            params = {**params, "page_token": token}

    def _presigned_url(self, root: Root, path: str) -> tuple[str, dict[str, str]]:
        full = root.http.full(path)
        key = (root.http.api, full)
        with self._lock:
            cached = self._presigned.get(key)
        if cached is not None and time.monotonic() - cached[0] < _PRESIGNED_REUSE:
            return cached[1], cached[2]
        body = self._request(root, "GET", root.http.url("presigned", path), f"presign {full}").json()
        url, headers = body["url"], dict(body.get("headers") or {})
        with self._lock:
            self._presigned[key] = (time.monotonic(), url, headers)
        return url, headers
