"""Direct-to-storage transfers: ``/mpu/create|complete|abort|parts``, ``/presigned``, ``/server-info``.

The server creates the multipart upload and presigns one URL per part; clients
send the parts straight to the storage, then ask the server to complete (or
abort). Destinations that cannot presign answer 501 with exactly the message
MLflow's client looks for before it falls back to a single PUT. ``/mpu/parts`` is
an mlartifacts extension (advertised as ``list_parts`` in ``/server-info``) for
resuming: the parts an incomplete upload holds, and fresh URLs for every part.
"""

from __future__ import annotations

import ntpath
import posixpath
import re
from typing import Any, Iterable

import anyio.to_thread
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from .. import paths
from .._types import Part
from .._version import __version__
from ..config import env_int
from ..errors import InvalidPath
from ..store import ArtifactStore
from ..transfer._digest import valid_hex
from ._errors import ApiError
from ._json import read_json
from ._listings import Listings
from ._paths import request_path

__all__ = ["MPU_UNSUPPORTED", "MultipartApi"]

MPU_UNSUPPORTED = "Multipart upload is not supported for the current artifact repository"
MPD_UNSUPPORTED = "Multipart download is not supported for the current artifact repository"


async def _json(request: Request) -> dict[str, Any]:
    if "json" not in request.headers.get("content-type", ""):
        raise ApiError("BAD_REQUEST", "Bad Request. Content-Type header is missing or not application/json.")
    body = await read_json(request)
    if not isinstance(body, dict):
        raise ApiError("BAD_REQUEST", "Bad Request. The body must be a JSON object.")
    return body


def _field(body: dict[str, Any], name: str, kind: type, required: bool = True) -> Any:
    value = body.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, kind) or isinstance(value, bool):
        raise ApiError("INVALID_PARAMETER_VALUE", f"'{name}' must be a {kind.__name__}, got {value!r}")
    return value


#: What an upload id may look like: the storages' own ids are URL-safe tokens (S3's
#: base64 may hold '/', '+' and '='); anything else is a client's invention.
_UPLOAD_ID = re.compile(r"[A-Za-z0-9._~+=/-]{1,1024}")


def _upload_id(body: dict[str, Any]) -> str:
    value = _field(body, "upload_id", str, required=False) or ""
    if value and (not _UPLOAD_ID.fullmatch(value) or ".." in value.split("/")):
        raise ApiError("INVALID_PARAMETER_VALUE", f"Invalid upload_id: {value[:100]!r}")
    return value


def _parts(raw_parts: list[Any], max_parts: int) -> list[Part]:
    """The parts of ``mpu/complete``, each checked: a number in range, an ETag, maybe the URL it went to."""
    if not raw_parts:
        raise ApiError("INVALID_PARAMETER_VALUE", "'parts' must not be empty")
    parts = []
    for raw in raw_parts:
        number = raw.get("part_number") if isinstance(raw, dict) else None
        etag = raw.get("etag") if isinstance(raw, dict) else None
        url = raw.get("url") if isinstance(raw, dict) else None
        if isinstance(number, str) and number.isdigit() and len(number) < 8:
            number = int(number)
        if not isinstance(number, int) or isinstance(number, bool) or not 1 <= number <= max_parts:
            raise ApiError(
                "INVALID_PARAMETER_VALUE",
                f"each part needs a 'part_number' between 1 and {max_parts}, got {str(number)[:20]!r}",
            )
        if not isinstance(etag, (str, type(None))) or not isinstance(url, (str, type(None))):
            raise ApiError("INVALID_PARAMETER_VALUE", "a part's 'etag' and 'url' must be strings")
        if not etag and not url:
            # Azure answers a block PUT without an ETag, so MLflow's client sends null there;
            # such parts are named by the block id in their 'url' instead.
            raise ApiError("INVALID_PARAMETER_VALUE", "each part needs 'part_number', and 'etag' or 'url'")
        parts.append(Part(number, etag or "", url or None))
    return parts


class MultipartApi:
    """Multipart upload, presigned download and capability discovery for one store."""

    def __init__(
        self, store: ArtifactStore, default_artifact_root: str | None = None, listings: Listings | None = None
    ) -> None:
        self.store = store
        self.listings = listings or Listings()
        self.default_artifact_root = default_artifact_root
        self.upload_ttl = env_int("MLARTIFACTS_PRESIGNED_UPLOAD_TTL_SECONDS", 3600, minimum=1)
        self.download_ttl = env_int("MLFLOW_PRESIGNED_DOWNLOAD_URL_TTL_SECONDS", 300, minimum=1)

    @property
    def uploads_enabled(self) -> bool:
        backend = self.store.backend
        return backend.multipart_limits is not None and backend.capabilities.presign

    @property
    def downloads_enabled(self) -> bool:
        return self.store.backend.capabilities.presign

    def _target(self, request: Request, client_path: str) -> str:
        directory = request_path(request.path_params.get("path"))
        # Only the client file's name is used, as MLflow does; the client may be on Windows.
        name = ntpath.basename(posixpath.basename(client_path))
        try:
            clean = paths.normalize(name)
        except InvalidPath:
            raise ApiError("INVALID_PARAMETER_VALUE", f"Invalid path: {client_path!r}") from None
        if not clean or "/" in clean:
            raise ApiError("INVALID_PARAMETER_VALUE", f"Invalid path: {client_path!r}")
        return paths.join(directory, clean)

    async def create(self, request: Request) -> Response:
        body = await _json(request)
        if not self.uploads_enabled:
            raise ApiError("NOT_IMPLEMENTED", MPU_UNSUPPORTED)
        target = self._target(request, _field(body, "path", str))
        parts = _field(body, "num_parts", int)
        limits = self.store.backend.multipart_limits
        assert limits is not None
        if not 1 <= parts <= limits.max_parts:
            raise ApiError(
                "INVALID_PARAMETER_VALUE", f"num_parts must be between 1 and {limits.max_parts}, got {parts}"
            )
        backend = self.store.backend

        def create() -> dict[str, Any]:
            upload_id = backend.create_multipart(target)
            credentials = self._credentials(target, upload_id, range(1, parts + 1))
            return {"upload_id": upload_id, "credentials": credentials}

        return JSONResponse(await anyio.to_thread.run_sync(create))

    async def complete(self, request: Request) -> Response:
        body = await _json(request)
        if not self.uploads_enabled:
            raise ApiError("NOT_IMPLEMENTED", MPU_UNSUPPORTED)
        target = self._target(request, _field(body, "path", str))
        upload_id = _upload_id(body)
        limits = self.store.backend.multipart_limits
        assert limits is not None
        parts = _parts(_field(body, "parts", list), limits.max_parts)
        # Beyond MLflow: our client sends the SHA-256 it hashed while reading the parts.
        digest = valid_hex(body.get("digest")) if isinstance(body, dict) else None
        self.listings.forget(target)
        await anyio.to_thread.run_sync(
            self.store.backend.complete_multipart, target, upload_id, parts, digest
        )
        self.listings.forget(target)
        return JSONResponse({})

    @property
    def lists_parts(self) -> bool:
        return self.uploads_enabled and self.store.backend.lists_parts

    def _credentials(self, target: str, upload_id: str, numbers: Iterable[int]) -> list[dict[str, Any]]:
        credentials = []
        for number in numbers:
            url = self.store.backend.presign(target, "PUT", self.upload_ttl, upload_id, number)
            credential: dict[str, Any] = {"url": url.url, "part_number": number}
            if url.headers:
                credential["headers"] = dict(url.headers)
            credentials.append(credential)
        return credentials

    async def parts(self, request: Request) -> Response:
        body = await _json(request)
        if not self.lists_parts:
            raise ApiError("NOT_IMPLEMENTED", "Listing the parts of an upload is not supported here")
        target = self._target(request, _field(body, "path", str))
        upload_id = _upload_id(body)
        if not upload_id:
            raise ApiError("INVALID_PARAMETER_VALUE", "'upload_id' is required")
        limits = self.store.backend.multipart_limits
        assert limits is not None
        wanted = _field(body, "presign", list, required=False) or []
        if len(wanted) > 100 or not all(
            isinstance(n, int) and not isinstance(n, bool) and n >= 1 for n in wanted
        ):
            raise ApiError("INVALID_PARAMETER_VALUE", "'presign' must list at most 100 part numbers")
        numbers = sorted({n for n in wanted if n <= limits.max_parts})

        def listed() -> dict[str, Any]:
            found = self.store.backend.list_parts(target, upload_id)  # NotFound: a 404
            return {
                "upload_id": upload_id,
                "parts": [{"part_number": p.part_number, "etag": p.etag, "size": p.size} for p in found],
                "credentials": self._credentials(target, upload_id, numbers),
            }

        return JSONResponse(await anyio.to_thread.run_sync(listed))

    async def abort(self, request: Request) -> Response:
        body = await _json(request)
        if not self.uploads_enabled:
            raise ApiError("NOT_IMPLEMENTED", MPU_UNSUPPORTED)
        target = self._target(request, _field(body, "path", str))
        upload_id = _upload_id(body)
        await anyio.to_thread.run_sync(self.store.backend.abort_multipart, target, upload_id)
        return JSONResponse({})

    async def presigned(self, request: Request) -> Response:
        path = request_path(request.path_params["path"], allow_empty=False)
        if not self.downloads_enabled:
            raise ApiError("NOT_IMPLEMENTED", MPD_UNSUPPORTED)

        def presign() -> dict[str, Any]:
            info = self.store.stat(path)
            if info.is_dir:
                raise ApiError(
                    "INVALID_PARAMETER_VALUE", f"Artifact path refers to a directory, not a file: '{path}'"
                )
            url = self.store.backend.presign(path, "GET", self.download_ttl)
            return {"url": url.url, "headers": dict(url.headers), "file_size": info.file_size}

        return JSONResponse(await anyio.to_thread.run_sync(presign))

    async def server_info(self, request: Request) -> Response:
        return JSONResponse(
            {
                "store_type": None,
                "workspaces_enabled": False,
                "multipart_uploads_enabled": self.uploads_enabled,
                "multipart_downloads_enabled": self.downloads_enabled,
                "default_artifact_root": self.default_artifact_root,
                "mlartifacts": {
                    "version": __version__,
                    "backend": self.store.plugin,
                    "range_requests": True,
                    "recursive_listing": True,
                    "batch_transfers": True,
                    "list_parts": self.lists_parts,
                },
            }
        )
