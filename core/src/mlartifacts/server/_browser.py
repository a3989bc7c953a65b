"""The artifact browser: its page and assets at ``/`` (no build step, no CDN), and directory archives.

The page is static: a script (``static/browser.js``) calls the artifacts API from
the same origin, so it passes the Origin check and the browser's own Basic-auth
prompt covers every call. Its Content-Security-Policy allows only this origin's
script, style, images and API, and no inline script, so an artifact's name or
content can never become running code (names are set as text, never markup).

``GET /mlflow-artifacts/archive/<dir>?format=tar|zip`` streams a directory as one
file, member by member: nothing is staged on disk, and memory holds about one
block at a time whatever the files' sizes.
"""

from __future__ import annotations

import importlib.resources
import itertools
import posixpath
import tarfile
import time
import zipfile
from typing import Iterator

import anyio.to_thread
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response, StreamingResponse

from .._types import FileInfo
from ..store import ArtifactStore
from ._artifacts import ARTIFACT_POLICY, content_disposition
from ._errors import ApiError
from ._paths import request_path

__all__ = ["PAGE_POLICY", "BrowserPage", "archive_stream"]

#: The page's own policy: nothing but this origin, and no inline script or style.
PAGE_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'self'"
)
_ASSETS = {
    "browser.js": "text/javascript; charset=utf-8",
    "browser.css": "text/css; charset=utf-8",
    "favicon.svg": "image/svg+xml",
}
_BLOCK = 1024 * 1024


def _asset(name: str) -> bytes:
    return importlib.resources.files("mlartifacts.server").joinpath("static").joinpath(name).read_bytes()


class BrowserPage:
    """``/`` and ``/static/<asset>``; the assets are read once, from the package."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.index = _asset("index.html")
        self.assets = {name: (_asset(name), kind) for name, kind in _ASSETS.items()}

    def _headers(self) -> dict[str, str]:
        return {
            "Content-Security-Policy": PAGE_POLICY,
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "same-origin",
            "Cache-Control": "no-cache",
        }

    async def page(self, request: Request) -> Response:
        if not request.url.path.endswith("/"):
            # The page's links are relative to the prefix's directory.
            return RedirectResponse(f"{self.prefix}/", status_code=308)
        return Response(self.index, media_type="text/html; charset=utf-8", headers=self._headers())

    async def asset(self, request: Request) -> Response:
        found = self.assets.get(request.path_params["name"])
        if found is None:
            raise ApiError("ENDPOINT_NOT_FOUND", f"No asset {request.path_params['name']!r}")
        body, kind = found
        return Response(body, media_type=kind, headers=self._headers())


class _Spool:
    """A write-only, non-seekable file that keeps what is written until drained."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []
        self.size = 0
        self.offset = 0  # zipfile asks where it is, even on a stream

    def write(self, data: bytes) -> int:
        self.parts.append(bytes(data))
        self.size += len(data)
        self.offset += len(data)
        return len(data)

    def tell(self) -> int:
        return self.offset

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass

    def drain(self) -> bytes:
        out = b"".join(self.parts)
        self.parts.clear()
        self.size = 0
        return out


def _tar_stream(store: ArtifactStore, directory: str, files: Iterator[FileInfo]) -> Iterator[bytes]:
    """A pax tar of ``files`` (below ``directory``), each file read a chunk at a time."""
    now = int(time.time())
    offset = len(directory) + 1 if directory else 0
    for info in files:
        member = tarfile.TarInfo(info.path[offset:])
        member.size = info.file_size or 0
        member.mtime = int(info.modified or now)
        member.mode = 0o644
        yield member.tobuf(tarfile.PAX_FORMAT)
        sent = 0
        for chunk in store.read(info.path):
            sent += len(chunk)
            yield chunk
        if sent != member.size:
            # Changed since it was listed: stop rather than send a tar that lies.
            raise OSError(f"{info.path} changed while it was archived")
        if sent % tarfile.BLOCKSIZE:
            yield b"\0" * (tarfile.BLOCKSIZE - sent % tarfile.BLOCKSIZE)
    yield b"\0" * (2 * tarfile.BLOCKSIZE)


def _zip_stream(store: ArtifactStore, directory: str, files: Iterator[FileInfo]) -> Iterator[bytes]:
    """A zip (stored, zip64 where needed) of ``files`` (below ``directory``), streamed."""
    spool = _Spool()
    offset = len(directory) + 1 if directory else 0
    with zipfile.ZipFile(spool, mode="w", compression=zipfile.ZIP_STORED) as archive:
        for info in files:
            stamp = time.localtime(info.modified or time.time())
            member = zipfile.ZipInfo(info.path[offset:], date_time=stamp[:6])
            member.file_size = info.file_size or 0
            with archive.open(member, mode="w", force_zip64=member.file_size > 0x7FFFFFFF) as out:
                for chunk in store.read(info.path):
                    out.write(chunk)
                    if spool.size >= _BLOCK:
                        yield spool.drain()
            if spool.size:
                yield spool.drain()
    yield spool.drain()  # the central directory


async def archive_stream(store: ArtifactStore, request: Request) -> Response:
    """``GET .../archive/<dir>?format=tar|zip``: the directory as one streamed download."""
    directory = request_path(request.path_params["path"])
    kind = request.query_params.get("format", "tar")
    if kind not in ("tar", "zip"):
        raise ApiError("INVALID_PARAMETER_VALUE", f"format must be 'tar' or 'zip', got {kind!r}")
    listing = store.iter_files(directory)
    first = await anyio.to_thread.run_sync(next, listing, None)
    if first is None:  # before any byte is sent, so the client gets a real 404
        raise ApiError("RESOURCE_DOES_NOT_EXIST", f"No files under '{directory}'")
    files = itertools.chain([first], listing)
    name = f"{posixpath.basename(directory) or 'artifacts'}.{kind}"
    headers = {
        "Content-Disposition": content_disposition(name),
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": ARTIFACT_POLICY,
    }
    if kind == "zip":
        body = _zip_stream(store, directory, files)
        return StreamingResponse(body, media_type="application/zip", headers=headers)
    body = _tar_stream(store, directory, files)
    return StreamingResponse(body, media_type="application/x-tar", headers=headers)
