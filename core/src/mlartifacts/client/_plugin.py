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

import io
import math
import mimetypes
import os
import posixpath
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import IO, Any, Iterable, Iterator, Mapping, Sequence
from urllib.parse import quote, urlsplit

from .. import paths
from .._tar import read_members, reader, write_members
from .._types import Capabilities, FileInfo, GiB, MultipartLimits, Part
from ..config import MAX_BATCH_FILE_SIZE
from ..errors import ArtifactError, BackendError, IntegrityError, InvalidPath, NotFound, NotSupported
from ..hookspecs import Progress, hookimpl
from ..transfer._digest import DigestFieldError, http_field, parse_http_field, sha256_hex, valid_hex
from ._http import ServerInfo, allow_insecure, check, request, transport_error, unreachable
from ._settings import ClientSettings
from ._uri import HttpRoot, resolve

__all__ = ["ArtifactsServiceClient", "Root"]

_CHUNK = 1024 * 1024
# Entries per page of a recursive listing. The server walks the tree again for each page
# (no start-after marker reaches the backends yet), so pages are large: a 10,000-file
# tree is one walk (about 1 MB of JSON), not ten.
_PAGE = 10_000
_TAR = "application/x-tar"
_PRESIGNED_REUSE = 120.0  # seconds a presigned download URL is reused (the server grants 300 by default)
#: Seconds a service whose storage this client could not reach is served through the
#: server only, before presigned transfers are tried again.
_UNREACHABLE_FOR = 300.0
#: Seconds to connect to a storage host never reached before: a storage address that is
#: only routable from the server (a private endpoint) must not hold the client for long.
_FIRST_CONNECT = 10.0


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


#: Parts presigned per request when a resumed upload needs URLs again.
_PRESIGN_WINDOW = 64


@dataclass
class _Upload:
    server_id: str | None
    credentials: dict[int, tuple[str, dict[str, str]]]


class _Reading:
    """A file object to send as a request body, reporting progress as it is read."""

    def __init__(self, f: IO[bytes], progress: Progress) -> None:
        self._f = f
        self._progress = progress

    def read(self, n: int = -1) -> bytes:
        data = self._f.read(_CHUNK if n is None or n < 0 else max(n, _CHUNK))
        if data:
            self._progress(len(data))
        return data


class ArtifactsServiceClient:
    """Hook implementations for artifacts-service URIs; holds the state of proxied uploads."""

    def __init__(self) -> None:
        self.server_info = ServerInfo()
        self._uploads: dict[str, _Upload] = {}
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

    # -- plumbing ------------------------------------------------------------------

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
                for chunk in response.iter_content(_CHUNK):
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
                for chunk in response.iter_content(_CHUNK):
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

    # -- batches of small files (our server only) --------------------------------------

    @hookimpl
    def upload_batch(self, root: Root, path: str, files: Iterable[tuple[str, bytes]]) -> None:
        full = root.http.full(path)
        sent = 0
        failure: list[BaseException] = []  # the caller's own error, whatever urllib3 wraps it in

        def members() -> Iterator[tuple[str, int, IO[bytes], str]]:
            nonlocal sent
            iterator = iter(files)
            while True:
                try:
                    name, data = next(iterator)
                except StopIteration:
                    return
                except BaseException as exc:
                    failure.append(exc)
                    raise
                sent += 1
                yield name, len(data), io.BytesIO(data), sha256_hex(data)  # checked by the server

        url = f"{root.http.api}/batch/upload/{quote(full)}"
        what = f"upload a batch to {full or '/'}"
        try:
            response = self._request(
                root, "POST", url, what, data=write_members(members()), headers={"Content-Type": _TAR}
            )
        except ArtifactError:
            if failure:
                raise failure[0] from None
            raise
        body = response.json()
        stored = body.get("files") if isinstance(body, dict) else None
        if stored != sent:
            raise BackendError(f"{what}: sent {sent} files, the server stored {stored}")

    @hookimpl
    def download_batch(self, root: Root, path: str, names: Sequence[str]) -> Iterator[tuple[str, bytes]]:
        full = root.http.full(path)
        what = f"download a batch from {full or '/'}"
        url = f"{root.http.api}/batch/download/{quote(full)}"
        response = self._request(root, "POST", url, what, json_body={"paths": list(names)}, stream=True)
        return self._members(response, what)

    @staticmethod
    def _members(response: Any, what: str) -> Iterator[tuple[str, bytes]]:
        with response:
            try:
                for name, size, data, announced in read_members(reader(response.iter_content(_CHUNK))):
                    if size > MAX_BATCH_FILE_SIZE:
                        raise BackendError(f"{what}: the server sent {name!r} of {size} bytes, too large")
                    content = data.read()
                    if announced is not None and sha256_hex(content) != announced:
                        raise IntegrityError(
                            f"{what}: {name!r} does not match the SHA-256 the server sent ({announced})"
                        )
                    yield name, content
            except ArtifactError:
                raise
            except Exception as exc:
                raise transport_error(exc, what) from exc

    @hookimpl
    def delete(self, root: Root, path: str) -> None:
        self.stat(root, path)  # the service answers 200 even for nothing; the contract says NotFound
        full = root.http.full(path)
        if not full:
            raise NotSupported("the artifacts service cannot delete its whole destination")
        self._request(root, "DELETE", root.http.url("artifacts", path), f"delete {full}")

    # -- proxied multipart upload ------------------------------------------------------

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
            self._uploads[key] = _Upload(server_id, credentials)
        return str(key)

    def _upload(self, upload_id: str) -> _Upload:
        with self._lock:
            upload = self._uploads.get(upload_id)
        if upload is None:
            raise BackendError(f"unknown proxied multipart upload {upload_id!r}")
        return upload

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

    @hookimpl
    def list_parts(self, root: Root, path: str, upload_id: str) -> list[Part]:
        # A resumed upload, perhaps begun by a process since killed: the server lists its
        # parts; URLs for the parts still to send are asked for as they are sent.
        if upload_id.startswith("local-"):
            raise NotFound(f"upload {upload_id!r} was named by a client, not the server: it cannot be listed")
        body = self._parts(root, path, upload_id, [])
        with self._lock:
            self._uploads.setdefault(upload_id, _Upload(upload_id, {}))
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
        upload = known or _Upload(None if upload_id.startswith("local-") else upload_id, {})
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


def _file(path: str, entry: dict[str, Any]) -> FileInfo:
    """A file of a listing; our server's ``details`` carry its digest as ``sha256:<hex>``."""
    digest = entry.get("digest")
    sha256 = (
        valid_hex(digest[len("sha256:") :])
        if isinstance(digest, str) and digest.startswith("sha256:")
        else None
    )
    return FileInfo(path, False, int(entry.get("file_size") or 0), digest=sha256)
