"""The client of an artifacts service (ours or MLflow's), as a built-in backend plugin.

Schemes ``http``, ``https`` (``.../api/2.0/mlflow-artifacts/artifacts/<path>``) and
``mlflow-artifacts`` (resolved against ``MLFLOW_TRACKING_URI``). Files move through
the core's engine like any backend's: trees in parallel, downloads verified against
Content-Length, ranged reads where the server serves ranges, and, where the server
advertises them in /server-info, presigned transfers: multipart uploads whose parts
go straight to the storage, and ranged downloads from it. When the storage cannot
be reached from the client, or the server cannot presign (501), the bytes go
through the server instead (``MLARTIFACTS_PRESIGNED_TRANSFERS=false`` always does).
"""

from __future__ import annotations

import mimetypes
import os
import posixpath
import time
from typing import IO, Any, Iterable, Iterator, Mapping, Sequence
from urllib.parse import urlsplit

from .. import paths
from .._types import Capabilities, FileInfo, GiB, MultipartLimits
from ..errors import ArtifactError, IntegrityError, NotFound, NotSupported
from ..hookspecs import Progress, hookimpl
from ..transfer._digest import DigestFieldError, http_field, parse_http_field, valid_hex
from ._base import CHUNK, Root
from ._batches import BatchTransfers
from ._http import allow_insecure, check, request, transport_error, unreachable
from ._multipart import MultipartUploads
from ._settings import ClientSettings
from ._uri import resolve

__all__ = ["ArtifactsServiceClient", "Root"]

#: Seconds to connect to a storage host never reached before: a storage address that is
#: only routable from the server (a private endpoint) must not hold the client for long.
_FIRST_CONNECT = 10.0


class _Reading:
    """A file object to send as a request body, reporting progress as it is read."""

    def __init__(self, f: IO[bytes], progress: Progress) -> None:
        self._f = f
        self._progress = progress

    def read(self, n: int = -1) -> bytes:
        data = self._f.read(CHUNK if n is None or n < 0 else max(n, CHUNK))
        if data:
            self._progress(len(data))
        return data


class ArtifactsServiceClient(MultipartUploads, BatchTransfers):
    """Hook implementations for artifacts-service URIs.

    Its state and requests to the server are ``ClientBase``'s; the multipart bookkeeping and batch hooks are
    inherited (pluggy collects hook implementations from base classes too).
    """

    # -- requests to presigned storage ------------------------------------------------

    def _storage(
        self, root: Root, method: str, url: str, what: str, *, accept: tuple[int, ...] = (), **kwargs: Any
    ) -> Any:
        """A request to presigned storage: no service credentials, storage TLS settings.

        Raises NotSupported when the storage host, never reached before, cannot be
        reached at all (no name, no route, refused): the caller then goes through the
        server, and so does every transfer to this service for a while.
        """
        host = urlsplit(url).netloc
        first = host not in self._reached
        try:
            response = request(
                method,
                url,
                verify=root.settings.storage_verify,
                timeout=root.settings.timeout,
                connect_timeout=_FIRST_CONNECT if first else None,
                netrc=False,  # the URL's signature is its login
                **kwargs,
            )
        except Exception as exc:
            error = transport_error(exc, what, url)
            if first and unreachable(exc):
                with self._lock:
                    self._unreachable[root.http.api] = time.monotonic()
                raise NotSupported(
                    f"{error}; the storage is unreachable from here: going through the server"
                ) from exc
            raise error from exc
        if first:
            with self._lock:
                self._reached.add(host)
        return check(response, what, accept)

    # -- the contract ----------------------------------------------------------------

    @hookimpl
    def schemes(self) -> Sequence[str]:
        return ["http", "https", "mlflow-artifacts"]

    @hookimpl
    def resolve_uri(self, uri: str) -> Root:
        settings = ClientSettings.from_env()
        if settings.verify is False:
            allow_insecure("MLFLOW_TRACKING_INSECURE_TLS")
        if not settings.storage_verify:
            allow_insecure("MLFLOW_S3_IGNORE_TLS")
        return Root(resolve(uri), settings)

    @hookimpl
    def capabilities(self, root: Root | None) -> Capabilities:
        if root is None:
            return Capabilities()
        # Our server serves Range for every destination; MLflow's does not always.
        ranged = "mlartifacts" in self._info(root) or self._multipart_downloads(root)
        return Capabilities(
            ranged_read=ranged,
            batch=self._extension(root, "batch_transfers"),
            list_parts=self._multipart_uploads(root) and self._extension(root, "list_parts"),
        )

    @hookimpl
    def supports_multipart(self, root: Root | None) -> MultipartLimits | None:
        if root is None or not self._multipart_uploads(root):
            return None
        chunk = root.settings.upload_chunk
        return MultipartLimits(
            min_part_size=chunk,
            max_part_size=5 * GiB,
            max_parts=10_000,
            threshold=root.settings.upload_threshold,
            part_size=chunk,
        )

    @hookimpl
    def stat(self, root: Root, path: str) -> FileInfo:
        full = root.http.full(path)
        if not full:
            if self._children(root, ""):
                return FileInfo(path, True)
            raise NotFound(f"nothing at the top of {root.http.api}/artifacts")
        parent, name = posixpath.split(full)
        for entry in self._children(root, parent):
            if entry["path"] == name:
                if entry.get("is_dir"):
                    return FileInfo(path, True)
                return _file(path, entry)
        raise NotFound(f"no artifact {full!r} at {root.http.api}/artifacts")

    @hookimpl(specname="list")
    def list_entries(self, root: Root, path: str, recursive: bool) -> Iterator[FileInfo]:
        if recursive and self._extension(root, "recursive_listing"):
            # Our server lists a whole tree in one request per page, not one per directory.
            for entry in self._children(root, root.http.full(path), recursive=True):
                if not entry.get("is_dir"):
                    yield _file(paths.join(path, entry["path"]), entry)
            return
        pending = [path]
        while pending:
            current = pending.pop()
            for entry in self._children(root, root.http.full(current)):
                rel = paths.join(current, entry["path"])
                if entry.get("is_dir"):
                    if recursive:
                        pending.append(rel)
                    else:
                        yield FileInfo(rel, True)
                else:
                    yield _file(rel, entry)

    @hookimpl
    def upload(self, root: Root, path: str, local_file: str, progress: Progress, digest: str | None) -> None:
        size = os.path.getsize(local_file)
        kind = mimetypes.guess_type(local_file)[0] or "application/octet-stream"
        headers = {"Content-Type": kind, "Content-Length": str(size)}
        if digest is not None:
            headers["Content-Digest"] = http_field(digest)  # our server checks it before committing
        with open(local_file, "rb") as f:
            self._request(
                root,
                "PUT",
                root.http.url("artifacts", path),
                f"upload {root.http.full(path)}",
                data=_Reading(f, progress),
                headers=headers,
            )

    @hookimpl
    def write(self, root: Root, path: str, chunks: Iterable[bytes], digest: str | None) -> None:
        kind = mimetypes.guess_type(path)[0] or "application/octet-stream"
        headers = {"Content-Type": kind}
        if digest is not None:
            headers["Content-Digest"] = http_field(digest)
        self._request(
            root,
            "PUT",
            root.http.url("artifacts", path),
            f"upload {root.http.full(path)}",
            data=(chunk for chunk in chunks if chunk),
            headers=headers,
        )

    def _get(self, root: Root, path: str, headers: Mapping[str, str], accept: tuple[int, ...] = ()) -> Any:
        full = root.http.full(path)
        what = f"download {full}"
        if self._multipart_downloads(root):
            try:
                url, extra = self._presigned_url(root, path)
                return self._storage(
                    root, "GET", url, what, headers={**extra, **headers}, stream=True, accept=accept
                )
            except NotSupported:
                pass  # the server cannot presign (501), or the storage is out of reach: go through it
        url = root.http.url("artifacts", path)
        return self._request(root, "GET", url, what, headers=dict(headers), stream=True, accept=accept)

    @hookimpl
    def download(self, root: Root, path: str, local_file: str, progress: Progress) -> str | None:
        response = self._get(root, path, {})
        expected = response.headers.get("Content-Length")
        try:  # the digest our server sends with the file: the engine checks the file against it
            sent = parse_http_field(response.headers.get("Repr-Digest"))
        except DigestFieldError:
            sent = None
        received = 0
        with response, open(local_file, "wb") as f:
            try:
                for chunk in response.iter_content(CHUNK):
                    f.write(chunk)
                    received += len(chunk)
                    progress(len(chunk))
            except ArtifactError:
                raise
            except Exception as exc:
                raise transport_error(exc, f"download {root.http.full(path)}") from exc
        if expected is not None and expected.isdigit() and int(expected) != received:
            raise IntegrityError(
                f"download {root.http.full(path)}: received {received} bytes, Content-Length said {expected}"
            )
        return sent

    @hookimpl
    def read(self, root: Root, path: str, offset: int, length: int | None) -> Iterator[bytes]:
        headers = {}
        if offset or length is not None:
            last = "" if length is None else str(offset + length - 1)
            headers["Range"] = f"bytes={offset}-{last}"
        response = self._get(root, path, headers, accept=(416,))  # sent now: a missing file fails here
        if response.status_code == 416:  # the range starts at or past the end: nothing to read
            response.close()
            return iter(())
        skip = offset if response.status_code == 200 else 0  # the server ignored Range
        return self._body(response, skip, length, root.http.full(path))

    @staticmethod
    def _body(response: Any, skip: int, length: int | None, what: str) -> Iterator[bytes]:
        remaining = length
        with response:
            try:
                for chunk in response.iter_content(CHUNK):
                    if skip:
                        cut = min(skip, len(chunk))
                        chunk, skip = chunk[cut:], skip - cut
                    if remaining is not None:
                        chunk = chunk[:remaining]
                        remaining -= len(chunk)
                    if chunk:
                        yield chunk
                    if remaining == 0:
                        return
            except ArtifactError:
                raise
            except Exception as exc:
                raise transport_error(exc, f"read {what}") from exc

    # -- a part of a proxied multipart upload (the rest is in _multipart) ---------------

    @hookimpl
    def upload_part(self, root: Root, path: str, upload_id: str, part_number: int, data: bytes) -> str:
        url, headers = self._part_url(root, path, upload_id, part_number)
        response = self._storage(
            root, "PUT", url, f"part {part_number} of {root.http.full(path)}", data=data, headers=headers
        )
        # Some storages answer a part's PUT without an ETag: Azure's Put Block (its parts are
        # named by the block id in their URL, which the completion sends back) and
        # fake-gcs-server's signed PUT. MLflow's client then sends "" and so do we; a
        # destination that needs the ETag refuses the completion.
        return str(response.headers.get("ETag") or "")

    # -- deleting --------------------------------------------------------------------

    @hookimpl
    def delete(self, root: Root, path: str) -> None:
        self.stat(root, path)  # the service answers 200 even for nothing; the contract says NotFound
        full = root.http.full(path)
        if not full:
            raise NotSupported("the artifacts service cannot delete its whole destination")
        self._request(root, "DELETE", root.http.url("artifacts", path), f"delete {full}")


def _file(path: str, entry: dict[str, Any]) -> FileInfo:
    """A file of a listing; our server's ``details`` carry its digest as ``sha256:<hex>``
    (and, for a file changed since it was recorded, the old one as ``stale_digest``)."""
    return FileInfo(
        path,
        False,
        int(entry.get("file_size") or 0),
        digest=_sha256(entry.get("digest")),
        stale_digest=_sha256(entry.get("stale_digest")),
    )


def _sha256(value: object) -> str | None:
    """The hex digest of a listing's ``sha256:<hex>``, else None."""
    if isinstance(value, str) and value.startswith("sha256:"):
        return valid_hex(value[len("sha256:") :])
    return None
