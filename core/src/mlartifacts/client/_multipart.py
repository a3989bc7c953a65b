"""Proxied multipart uploads: the server presigns each part's URL, the parts go to the storage."""

from __future__ import annotations

import math
import posixpath
import uuid
from typing import Any, Sequence
from urllib.parse import quote

from .._types import Part
from ..errors import BackendError, NotFound, NotSupported
from ..hookspecs import hookimpl
from ._base import ClientBase, Root, Upload

__all__ = ["MultipartUploads"]

#: Parts presigned per request when a resumed upload needs URLs again.
_PRESIGN_WINDOW = 64


class MultipartUploads(ClientBase):
    """Hook implementations of the multipart contract, through the server's ``mpu`` routes."""

    @hookimpl
    def create_multipart(self, root: Root, path: str, size: int | None, part_size: int) -> str:
        if size is None:
            raise NotSupported("a proxied multipart upload needs the size up front")
        if not self._presigned_ok(root):
            raise NotSupported(f"the storage behind {root.http.api} is unreachable from here")
        full = root.http.full(path)
        directory, name = posixpath.split(full)
        body = self._request(
            root,
            "POST",
            f"{root.http.api}/mpu/create/{quote(directory)}",
            f"create multipart upload of {full}",
            json_body={"path": name, "num_parts": math.ceil(size / part_size)},
        ).json()
        credentials = {
            int(c["part_number"]): (str(c["url"]), dict(c.get("headers") or {})) for c in body["credentials"]
        }
        server_id = body.get("upload_id")
        key = server_id or f"local-{uuid.uuid4().hex}"  # Azure-style services have no upload id
        with self._lock:
            self._uploads[key] = Upload(server_id, credentials)
        return str(key)

    def _upload(self, upload_id: str) -> Upload:
        with self._lock:
            upload = self._uploads.get(upload_id)
        if upload is None:
            raise BackendError(f"unknown proxied multipart upload {upload_id!r}")
        return upload

    @hookimpl
    def list_parts(self, root: Root, path: str, upload_id: str) -> list[Part]:
        # A resumed upload, perhaps begun by a process since killed: the server lists its
        # parts; URLs for the parts still to send are asked for as they are sent.
        if upload_id.startswith("local-"):
            raise NotFound(f"upload {upload_id!r} was named by a client, not the server: it cannot be listed")
        body = self._parts(root, path, upload_id, [])
        with self._lock:
            self._uploads.setdefault(upload_id, Upload(upload_id, {}))
        return [
            Part(int(p["part_number"]), str(p.get("etag") or ""), size=p.get("size")) for p in body["parts"]
        ]

    def _parts(self, root: Root, path: str, upload_id: str, presign: list[int]) -> dict[str, Any]:
        full = root.http.full(path)
        directory, name = posixpath.split(full)
        body: dict[str, Any] = self._request(
            root,
            "POST",
            f"{root.http.api}/mpu/parts/{quote(directory)}",
            f"list parts of {full}",
            json_body={"path": name, "upload_id": upload_id, "presign": presign},
        ).json()
        return body

    def _part_url(
        self, root: Root, path: str, upload_id: str, part_number: int
    ) -> tuple[str, dict[str, str]]:
        upload = self._upload(upload_id)
        found = upload.credentials.get(part_number)
        if found is not None:
            return found
        # A resumed upload: fresh URLs for this part and the next ones (one request per window).
        window = list(range(part_number, part_number + _PRESIGN_WINDOW))
        body = self._parts(root, path, upload_id, window)
        with self._lock:
            for c in body["credentials"]:
                upload.credentials[int(c["part_number"])] = (str(c["url"]), dict(c.get("headers") or {}))
        try:
            return upload.credentials[part_number]
        except KeyError:
            raise BackendError(f"no presigned URL for part {part_number} of {upload_id!r}") from None

    def _finish(self, root: Root, route: str, path: str, upload_id: str, **extra: Any) -> None:
        with self._lock:
            known = self._uploads.get(upload_id)
        # An upload this process did not start (a resumed one being given up): the id
        # is the server's, unless a client made it up.
        upload = known or Upload(None if upload_id.startswith("local-") else upload_id, {})
        full = root.http.full(path)
        directory, name = posixpath.split(full)
        body: dict[str, Any] = {"path": name, **extra}
        if upload.server_id is not None:
            body["upload_id"] = upload.server_id
        self._request(
            root, "POST", f"{root.http.api}/{route}/{quote(directory)}", f"{route} {full}", json_body=body
        )
        with self._lock:
            self._uploads.pop(upload_id, None)

    @hookimpl
    def complete_multipart(
        self, root: Root, path: str, upload_id: str, parts: Sequence[Part], digest: str | None
    ) -> None:
        urls = self._upload(upload_id).credentials
        extra = {"digest": digest} if digest is not None and "mlartifacts" in self._info(root) else {}
        self._finish(
            root,
            "mpu/complete",
            path,
            upload_id,
            **extra,
            parts=[
                {
                    "part_number": p.part_number,
                    "etag": p.etag,
                    "url": p.url or urls.get(p.part_number, ("",))[0],
                }
                for p in parts
            ],
        )

    @hookimpl
    def abort_multipart(self, root: Root, path: str, upload_id: str) -> None:
        self._finish(root, "mpu/abort", path, upload_id)
