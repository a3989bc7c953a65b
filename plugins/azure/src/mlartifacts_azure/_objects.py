"""Blobs: stat, listing, single-request uploads, downloads, ranged reads and deletes.

Each hook is one or a few Blob service requests; the core's engine does the
parallelism, staged blocks, ranges, retries and verification around them.
"""

from __future__ import annotations

import hashlib
import math
import os
from typing import TYPE_CHECKING, Any, Iterable, Iterator

from mlartifacts import Checksum, FileInfo, hookimpl
from mlartifacts.errors import BackendError, NotFound
from mlartifacts.hookspecs import Progress
from mlartifacts.transfer import sha256_hex, valid_hex

from ._errors import BY_CODE, error_code, status_of, translate, translated
from ._root import AzureRoot, content_type

if TYPE_CHECKING:
    from azure.storage.blob import BlobProperties, ContentSettings

__all__ = ["delete", "download", "list_entries", "read", "stat", "upload", "write"]

#: Results per listing request (the service's maximum; tests lower it to see pages turn).
LIST_PAGE_SIZE = 5000
#: Blobs per batch delete request (the service takes at most 256).
DELETE_BATCH = 256
_CHUNK = 1024 * 1024
#: The metadata key holding the content's SHA-256 (issue 15; Azure's keys are C# identifiers).
DIGEST_KEY = "mlartifacts_sha256"
# Codes with which an account refuses the batch API (HNS accounts, some emulators and proxies).
_NO_BATCH = {
    "FeatureNotSupportedByEmulator",
    "NotImplemented",
    "UnsupportedHttpVerb",
    "BlobBatchNotSupported",
}


def is_marker(blob: BlobProperties) -> bool:
    """A directory marker: a name ending in '/', or an ADLS folder (``hdi_isfolder`` metadata)."""
    if blob.name.endswith("/"):
        return True
    metadata = blob.metadata or {}
    return str(metadata.get("hdi_isfolder", "")).lower() == "true"


def checksum_of(settings: ContentSettings | None) -> Checksum | None:
    """The blob's stored Content-MD5 as a Checksum (absent for block lists committed without one)."""
    md5 = getattr(settings, "content_md5", None)
    return Checksum("md5", bytes(md5).hex()) if md5 and len(md5) == 16 else None


def digest_of(blob: BlobProperties) -> str | None:
    """The SHA-256 recorded in a blob's metadata (listings include metadata, as properties do)."""
    return valid_hex((blob.metadata or {}).get(DIGEST_KEY))


def _file_info(path: str, blob: BlobProperties) -> FileInfo:
    modified = blob.last_modified
    return FileInfo(
        path,
        False,
        int(blob.size),
        checksum=checksum_of(blob.content_settings),
        etag=str(blob.etag).strip('"') if blob.etag else None,
        modified=modified.timestamp() if modified is not None else None,
        digest=digest_of(blob),
    )


def properties(root: AzureRoot, name: str) -> BlobProperties | None:
    """The blob's properties, or None if there is no such blob."""
    from azure.core.exceptions import AzureError

    try:
        return root.blob(name).get_blob_properties(timeout=_server_timeout(root))
    except AzureError as exc:
        if status_of(exc) == 404 and error_code(exc) in ("", "BlobNotFound"):
            return None  # a HEAD has no body: a missing container says so on the next request
        raise translate(exc, root, name) from exc


@hookimpl
def stat(root: AzureRoot, path: str) -> FileInfo:
    name = root.name(path)
    if name:
        found = properties(root, name)
        if found is not None and not is_marker(found):
            return _file_info(path, found)
    # Not a blob: a directory if any blob lies below it.
    prefix = f"{name}/" if name else ""
    with translated(root, name or None):
        pages = root.container_client.list_blobs(name_starts_with=prefix, results_per_page=1).by_page()
        first = next(pages, None)
        below = next(iter(first), None) if first is not None else None
    if below is not None or not name:
        return FileInfo(path, True)  # the container's root is a directory even when empty
    raise NotFound(f"nothing at {root.uri(name)} (endpoint {root.endpoint})")


@hookimpl(specname="list")  # "list" would shadow the builtin in this module
def list_entries(root: AzureRoot, path: str, recursive: bool) -> Iterator[FileInfo]:
    name = root.name(path)
    return _list(root, f"{name}/" if name else "", recursive)


def _list(root: AzureRoot, prefix: str, recursive: bool) -> Iterator[FileInfo]:
    from azure.storage.blob import BlobPrefix

    container = root.container_client
    with translated(root, prefix.rstrip("/") or None):
        if recursive:
            items: Iterable[Any] = container.list_blobs(
                name_starts_with=prefix, include=["metadata"], results_per_page=LIST_PAGE_SIZE
            )
        else:  # the '/' delimiter: direct children only, subdirectories as prefixes
            items = container.walk_blobs(
                name_starts_with=prefix, include=["metadata"], delimiter="/", results_per_page=LIST_PAGE_SIZE
            )
        for item in items:
            if isinstance(item, BlobPrefix):
                yield FileInfo(root.rel(item.name.rstrip("/")), True)
            elif not is_marker(item):
                yield _file_info(root.rel(item.name), item)


def _content_settings(name: str, md5: bytes) -> ContentSettings:
    from azure.storage.blob import ContentSettings

    return ContentSettings(content_type=content_type(name), content_md5=bytearray(md5))


def _server_timeout(root: AzureRoot) -> int | None:
    # The service's own per-request timeout (it caps it at its maximum itself).
    return math.ceil(root.config.timeout) if root.config.timeout else None


def put(
    root: AzureRoot, name: str, data: bytes | Any, md5: bytes, length: int, digest: str | None = None
) -> None:
    """One Put Blob with Content-MD5 set (so later downloads can be verified) and the SHA-256 as metadata."""
    with translated(root, name):
        root.blob(name).upload_blob(
            data,
            length=length,
            overwrite=True,
            content_settings=_content_settings(name, md5),
            metadata={DIGEST_KEY: digest} if digest is not None else None,
            max_concurrency=1,
            timeout=_server_timeout(root),
        )


@hookimpl
def upload(root: AzureRoot, path: str, local_file: str, progress: Progress, digest: str | None) -> None:
    # The core sends only files below its multipart threshold here; progress is
    # reported once the blob exists.
    name = root.name(path)
    md5 = hashlib.md5(usedforsecurity=False)
    with open(local_file, "rb") as body:
        for block in iter(lambda: body.read(_CHUNK), b""):
            md5.update(block)
        size = os.fstat(body.fileno()).st_size
        body.seek(0)
        put(root, name, body, md5.digest(), size, digest)
    progress(size)


@hookimpl
def write(root: AzureRoot, path: str, chunks: Iterable[bytes], digest: str | None) -> None:
    # Less than one part (the core sends longer streams in parts), so buffering is fine;
    # a stream that breaks raises before anything is sent.
    data = b"".join(chunks)
    md5 = hashlib.md5(data, usedforsecurity=False).digest()
    put(root, root.name(path), data, md5, len(data), digest or sha256_hex(data))


@hookimpl
def download(root: AzureRoot, path: str, local_file: str, progress: Progress) -> str | None:
    name = root.name(path)
    with translated(root, name):
        stream = root.blob(name).download_blob(max_concurrency=1, timeout=_server_timeout(root))
        with open(local_file, "wb") as f:
            for chunk in stream.chunks():
                f.write(chunk)
                progress(len(chunk))
    return digest_of(stream.properties)  # the digest that came with these bytes


@hookimpl
def read(root: AzureRoot, path: str, offset: int, length: int | None) -> Iterator[bytes]:
    from azure.core.exceptions import AzureError

    name = root.name(path)
    if length == 0:
        if properties(root, name) is None:
            raise NotFound(f"no blob at {root.uri(name)} (endpoint {root.endpoint})")
        return iter(())
    try:
        stream = root.blob(name).download_blob(
            offset=offset if (offset or length is not None) else None,
            length=length,
            max_concurrency=1,
            timeout=_server_timeout(root),
        )
    except AzureError as exc:
        if status_of(exc) == 416:  # the range starts at or past the end
            return iter(())
        raise translate(exc, root, name) from exc
    return _stream(root, name, stream.chunks())


def _stream(root: AzureRoot, name: str, chunks: Iterator[bytes]) -> Iterator[bytes]:
    with translated(root, name):
        yield from chunks


@hookimpl
def delete(root: AzureRoot, path: str) -> None:
    name = root.name(path)
    files: list[str] = []
    markers: list[str] = []
    deleted = 0
    if name:
        found = properties(root, name)
        if found is not None:
            (markers if is_marker(found) else files).append(name)
    # Only the blob itself and blobs below "name/": deleting "foo" never touches "foobar".
    listing = root.container_client.list_blobs(
        name_starts_with=f"{name}/" if name else "", include=["metadata"], results_per_page=LIST_PAGE_SIZE
    )
    batches = _Batches(root)
    with translated(root, name or None):
        for blob in listing:
            (markers if is_marker(blob) else files).append(blob.name)
            if len(files) >= DELETE_BATCH:
                deleted += batches.delete(files[:DELETE_BATCH])
                del files[:DELETE_BATCH]
    deleted += batches.delete(files) if files else 0
    # ADLS folders go last, deepest first: a hierarchical account refuses to remove
    # a folder that still holds anything.
    markers.sort(key=lambda m: m.count("/"), reverse=True)
    for start in range(0, len(markers), DELETE_BATCH):
        deleted += batches.delete(markers[start : start + DELETE_BATCH])
    if not deleted:
        raise NotFound(f"nothing at {root.uri(name)} (endpoint {root.endpoint})")


class _Batches:
    """Deletes through the blob batch API, or one by one where the account refuses batches."""

    def __init__(self, root: AzureRoot) -> None:
        self.root = root
        self.batch = True

    def delete(self, names: list[str]) -> int:
        """Delete ``names``; returns how many existed. A name already gone is not an error."""
        from azure.core.exceptions import AzureError

        if not names:
            return 0
        if self.batch:
            try:
                return self._batch(names)
            except AzureError as exc:
                if not _batch_refused(exc):
                    raise translate(exc, self.root, names[0]) from exc
                self.batch = False  # and the rest of this delete goes one by one
        return sum(self._single(n) for n in names)

    def _batch(self, names: list[str]) -> int:
        from azure.storage.blob import PartialBatchErrorException

        container = self.root.container_client
        try:
            responses = list(
                container.delete_blobs(*names, delete_snapshots="include", raise_on_any_failure=False)
            )
        except PartialBatchErrorException as exc:  # only raised with raise_on_any_failure
            responses = list(exc.parts)
        if responses and all(_batch_refused_status(r.status_code) for r in responses):
            from azure.core.exceptions import HttpResponseError

            raise HttpResponseError(message="batch refused", response=responses[0])
        done = 0
        for name, response in zip(names, responses, strict=False):
            status = response.status_code
            if status in (200, 202):
                done += 1
            elif status != 404:  # gone meanwhile: what we wanted
                code = response.headers.get("x-ms-error-code", "")
                kind = BY_CODE.get(code, BackendError)
                raise kind(
                    f"could not delete {self.root.uri(name)}: {code or f'HTTP {status}'} "
                    f"(endpoint {self.root.endpoint})"
                )
        return done

    def _single(self, name: str) -> int:
        from azure.core.exceptions import AzureError

        try:
            self.root.blob(name).delete_blob(delete_snapshots="include")
        except AzureError as exc:
            if status_of(exc) == 404 and error_code(exc) != "ContainerNotFound":
                return 0
            raise translate(exc, self.root, name) from exc
        return 1


def _batch_refused_status(status: int) -> bool:
    return status in (400, 405, 501)


def _batch_refused(exc: BaseException) -> bool:
    return error_code(exc) in _NO_BATCH or status_of(exc) in (405, 501)
