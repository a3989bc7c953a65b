"""``/mlflow-artifacts/artifacts``: list, download (with Range), upload, delete — streamed both ways."""

from __future__ import annotations

import base64
import binascii
import email.utils
import mimetypes
import posixpath
from typing import Any, Iterable, Sequence
from urllib.parse import quote

import anyio.to_thread
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response

from .._types import FileInfo
from ..errors import IntegrityError
from ..store import ArtifactStore
from ..transfer._digest import DigestFieldError, http_field, parse_http_field
from ._errors import ApiError
from ._listings import Listings
from ._paths import request_path
from ._streams import (
    SMALL_BODY,
    IncompleteBody,
    ReadAheadResponse,
    RequestBody,
    parse_range,
    refuse_transfer_codings,
)

__all__ = ["ARTIFACT_POLICY", "ArtifactsApi"]

#: Sent with every artifact: were a browser to render one (HTML, SVG), nothing in it may run or
#: load; a sandboxed, script-less document (inline style is left so text and images still lay out).
ARTIFACT_POLICY = "default-src 'none'; style-src 'unsafe-inline'; sandbox"

# Served as text/plain, as MLflow does, so browsers display them and never run them.
_TEXT = {
    "txt", "log", "err", "cfg", "conf", "cnf", "cf", "ini", "properties", "prop", "hocon", "toml",
    "yaml", "yml", "xml", "json", "js", "py", "py3", "csv", "tsv", "md", "rst", "mlmodel", "mlproject",
}  # fmt: skip


def content_type(name: str) -> str:
    """The Content-Type to serve an artifact with."""
    extension = name.rsplit(".", 1)[-1].lower() if "." in name else name.lower()
    if extension in _TEXT:
        return "text/plain"
    if extension == "webp":
        return "image/webp"  # not in every Python's table
    return mimetypes.guess_type(name)[0] or "application/octet-stream"


def content_disposition(name: str) -> str:
    """``attachment`` with the file name, RFC 6266/5987-encoded when not plain ASCII."""
    if name.isascii() and '"' not in name and "\\" not in name:
        return f'attachment; filename="{name}"'
    fallback = name.encode("ascii", "replace").decode().replace('"', "_").replace("\\", "_")
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(name, safe='')}"


def entity_tag(info: FileInfo) -> str:
    """A strong ETag from the content's SHA-256 or the backend's, else a weak one from size and time."""
    if info.digest:
        return f'"sha256-{info.digest}"'
    if info.etag:
        return info.etag if info.etag.startswith(('"', 'W/"')) else f'"{info.etag}"'
    stamp = int((info.modified or 0) * 1_000_000)
    return f'W/"{info.file_size or 0:x}-{stamp:x}"'


def announced_digest(request: Request) -> str | None:
    """The SHA-256 a PUT announces in ``Content-Digest`` (or ``Repr-Digest``), or None."""
    try:
        found = parse_http_field(request.headers.get("content-digest"))
        return found or parse_http_field(request.headers.get("repr-digest"))
    except DigestFieldError as exc:
        raise ApiError("INVALID_PARAMETER_VALUE", f"Content-Digest: {exc}") from exc


def _encode_token(path: str) -> str:
    return base64.urlsafe_b64encode(path.encode()).decode()


def _decode_token(token: str) -> str:
    try:
        return base64.urlsafe_b64decode(token.encode()).decode()
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise ApiError("INVALID_PARAMETER_VALUE", f"Invalid page_token: {token!r}") from None


def _positive_int(request: Request, name: str) -> int | None:
    value = request.query_params.get(name)
    if value is None or value == "":
        return None
    if not value.isdigit() or int(value) < 1:
        raise ApiError("INVALID_PARAMETER_VALUE", f"{name} must be a positive integer, got {value!r}")
    return int(value)


class ArtifactsApi:
    """The artifact routes, over one store (the ``--artifacts-destination``)."""

    def __init__(self, store: ArtifactStore, listings: Listings | None = None) -> None:
        self.store = store
        self.listings = listings or Listings()

    async def list(self, request: Request) -> Response:
        """Direct children as ``{"files": [{"path": <basename>, "is_dir", "file_size"}]}``; ``{}`` if none.

        Beyond MLflow: ``recursive=true`` lists every file below ``path`` (paths
        relative to it), ``max_results`` / ``page_token`` page through large
        directories (``next_page_token`` is returned while more remain), and
        ``details=true`` adds ``modified`` (POSIX seconds) and ``digest``
        (``<algorithm>:<hex>``) where the destination knows them, and ``stale_digest``
        for a file changed (outside mlartifacts) since its digest was recorded.
        """
        path = request_path(request.query_params.get("path"))
        recursive = request.query_params.get("recursive", "").lower() in ("1", "true", "yes")
        details = request.query_params.get("details", "").lower() in ("1", "true", "yes")
        limit = _positive_int(request, "max_results")
        after = (
            _decode_token(request.query_params["page_token"])
            if request.query_params.get("page_token")
            else None
        )

        def collect() -> tuple[Sequence[FileInfo], int]:
            if not recursive:
                return self.store.list_artifacts(path), 0
            if after is not None:
                kept = self.listings.take_walk((path, after))  # page N of a walk made for page 1
                if kept is not None:
                    return kept
            return sorted(self.store.iter_files(path), key=lambda i: i.path), 0

        entries, start = await anyio.to_thread.run_sync(collect)
        offset = len(path) + 1 if path else 0
        files: list[dict[str, Any]] = []
        served: list[FileInfo] = []
        next_token = None
        for index in range(start, len(entries)):
            info = entries[index]
            rel = info.path[offset:] if recursive else posixpath.basename(info.path)
            if after is not None and rel <= after:
                continue
            if limit is not None and len(files) == limit:
                last = files[-1]["path"]
                next_token = _encode_token(last)
                if recursive:
                    self.listings.keep_walk((path, last), entries, index)
                break
            row: dict[str, Any] = {"path": rel, "is_dir": info.is_dir}
            if not info.is_dir:
                row["file_size"] = info.file_size
            if details:
                if info.modified is not None:
                    row["modified"] = info.modified
                if info.digest is not None:
                    row["digest"] = f"sha256:{info.digest}"
                elif info.checksum is not None:
                    row["digest"] = f"{info.checksum.algorithm}:{info.checksum.value}"
                if info.stale_digest is not None:  # recorded before the file changed outside
                    row["stale_digest"] = f"sha256:{info.stale_digest}"
            files.append(row)
            served.append(info)
        # A client lists, then fetches: the sizes let a batch download skip a stat per file.
        self.listings.remember(served)
        body: dict[str, Any] = {"files": files} if files else {}
        if next_token:
            body["next_page_token"] = next_token
        return JSONResponse(body)

    def _stat_small(self, path: str, read: bool) -> tuple[FileInfo, bytes | None]:
        """The file's details, and its bytes when it is small (so one thread hop serves it)."""
        for _ in range(3):
            info = self.store.stat(path)
            if not read or info.is_dir or (info.file_size or 0) > SMALL_BODY:
                return info, None
            data = self.store.read_bytes(path)
            if len(data) == info.file_size:
                return info, data
            # Replaced between the stat and the read: look again, so the ETag matches the bytes.
        return info, None

    async def download(self, request: Request) -> Response:
        """The file, streamed, with Content-Length, ETag, Last-Modified and Range (206).

        Files up to 1 MiB are read whole in the same worker-thread call as their
        stat; larger ones stream, a chunk per hop.
        """
        path = request_path(request.path_params["path"], allow_empty=False)
        info, data = await anyio.to_thread.run_sync(self._stat_small, path, request.method != "HEAD")
        if info.is_dir:
            raise ApiError(
                "INVALID_PARAMETER_VALUE", f"Artifact path refers to a directory, not a file: '{path}'"
            )
        size = info.file_size or 0
        name = posixpath.basename(path)
        tag = entity_tag(info)
        headers = {
            "ETag": tag,
            "Accept-Ranges": "bytes",
            "Content-Disposition": content_disposition(name),
            "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": ARTIFACT_POLICY,
        }
        if info.modified is not None:
            headers["Last-Modified"] = email.utils.formatdate(info.modified, usegmt=True)
        if info.digest is not None:
            headers["Repr-Digest"] = http_field(info.digest)  # RFC 9530: of the whole file, even in a 206
        if tag in (t.strip() for t in request.headers.get("if-none-match", "").split(",")):
            return Response(status_code=304, headers=headers)
        wanted = parse_range(request.headers.get("range"), size)
        if_range = request.headers.get("if-range")
        if if_range is not None and if_range.strip() != tag:
            wanted = None  # the client's copy is stale: send it everything
        if wanted == "unsatisfiable":
            return Response(status_code=416, headers={**headers, "Content-Range": f"bytes */{size}"})
        status, start, length = 200, 0, size
        if isinstance(wanted, tuple):
            start, length = wanted
            status = 206
            headers["Content-Range"] = f"bytes {start}-{start + length - 1}/{size}"
        headers["Content-Length"] = str(length)
        media_type = content_type(name)
        if request.method == "HEAD" or length == 0:
            return Response(status_code=status, headers=headers, media_type=media_type)
        if data is not None:
            body = data if length == size else data[start : start + length]
            return Response(body, status_code=status, headers=headers, media_type=media_type)
        # The first chunk is read at the call (a vanished file fails here, before any byte): off the loop.
        chunks = await anyio.to_thread.run_sync(self.store.read, path, start, length)
        return ReadAheadResponse(chunks, status_code=status, headers=headers, media_type=media_type)

    async def upload(self, request: Request) -> Response:
        """The raw body becomes the file (parents created, overwritten); nothing partial is ever visible."""
        raw = request.path_params["path"]
        if raw.endswith("/"):
            raise ApiError(
                "INVALID_PARAMETER_VALUE", "Artifact path must include a filename (cannot end with '/')."
            )
        path = request_path(raw, allow_empty=False)
        refuse_transfer_codings(request)
        digest = announced_digest(request)
        length = request.headers.get("content-length")
        expected = int(length) if length and length.isdigit() else None
        self.listings.forget(path)

        def write(chunks: Iterable[bytes]) -> None:
            self.store.write(path, chunks, expected, None, digest)

        try:
            if expected is not None and expected <= SMALL_BODY:
                # Small: read here, then written in one worker-thread call, not one per batch.
                data = await request.body()
                if len(data) != expected:
                    raise IncompleteBody(
                        f"the request body has {len(data)} bytes, its Content-Length {expected}"
                    )
                await anyio.to_thread.run_sync(write, (data,))
            else:
                body = RequestBody(request, expected)
                await body.run(write, body)
        except IntegrityError as exc:
            if digest is None:
                raise  # the storage's own check failed, not the client's
            raise ApiError(
                "INVALID_PARAMETER_VALUE", f"the body of '{path}' does not match its Content-Digest: {exc}"
            ) from exc
        except ClientDisconnect:
            # The client went away midway: the write was abandoned, nothing is visible.
            return Response(status_code=400)
        except IncompleteBody as exc:
            raise ApiError("INVALID_PARAMETER_VALUE", str(exc)) from exc
        finally:
            self.listings.forget(path)  # whatever happened, a listing before it is out of date
        return JSONResponse({})

    async def delete(self, request: Request) -> Response:
        """Delete a file or tree; ``{}`` also when nothing was there, as MLflow answers."""
        path = request_path(request.path_params["path"], allow_empty=False)
        try:
            await anyio.to_thread.run_sync(self.store.delete_artifacts, path)
        finally:
            self.listings.forget(path, tree=True)
        return JSONResponse({})
