"""Objects: stat, listing, single-request uploads, downloads, ranged reads, deletes and copies.

Each hook is one or a few GCS requests; the core's engine does the parallelism,
composite uploads, ranges, retries and verification around them. Reads go through
the JSON API's media URL on the shared authorized session, streamed, in requests of
at most ``MLFLOW_GCS_DOWNLOAD_CHUNK_SIZE`` bytes pinned to one generation.
"""

from __future__ import annotations

import base64
import itertools
import os
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import TYPE_CHECKING, Any, Iterable, Iterator
from urllib.parse import quote

from mlartifacts import Checksum, FileInfo, hookimpl
from mlartifacts.errors import IntegrityError, NotFound, NotSupported
from mlartifacts.hookspecs import Progress
from mlartifacts.paths import TEMP_PREFIX
from mlartifacts.transfer import sha256_hex, valid_hex

from ._errors import from_response, translated
from ._root import GCSRoot, content_type

if TYPE_CHECKING:
    from google.cloud.storage import Blob  # type: ignore[import-untyped]  # no py.typed

__all__ = ["copy", "delete", "download", "file_info", "iter_blobs", "list_entries", "put_bytes", "put_media",
           "read", "stat", "upload", "write"]  # fmt: skip

_CHUNK = 1024 * 1024
#: Objects per listing page: GCS's maximum (and default), asked for explicitly so a
#: server with another default (fake-gcs-server: everything at once) pages the same way.
PAGE_SIZE = 1000
# Only what a FileInfo needs: listing pages stay small.
_LIST_FIELDS = (
    "items(name,size,crc32c,md5Hash,etag,updated,timeCreated,generation,metadata),prefixes,nextPageToken"
)
#: The custom-metadata key holding the content's SHA-256 (issue 15).
DIGEST_KEY = "mlartifacts-sha256"


def _hex(b64: str | None) -> str | None:
    return base64.b64decode(b64).hex() if b64 else None


def file_info(path: str, blob: Blob) -> FileInfo:
    """A FileInfo from an object's metadata, with its CRC32C (GCS keeps one for every object)."""
    crc32c, md5 = _hex(blob.crc32c), _hex(blob.md5_hash)
    # CRC32C first: every object has it (composite objects have no MD5), and it is
    # cheaper to compute than MD5 when the download is verified.
    checksum = Checksum("crc32c", crc32c) if crc32c else Checksum("md5", md5) if md5 else None
    updated = blob.updated
    return FileInfo(
        path,
        False,
        int(blob.size or 0),
        checksum=checksum,
        etag=blob.etag or None,
        modified=updated.timestamp() if updated is not None else None,
        digest=valid_hex((blob.metadata or {}).get(DIGEST_KEY)),
    )


@hookimpl
def stat(root: GCSRoot, path: str) -> FileInfo:
    key = root.key(path)
    t = root.config.timeout
    if key:
        with translated(root, key):
            blob = root.handle.get_blob(key, timeout=t, retry=None)
        if blob is not None:
            return file_info(path, blob)
    # Not an object: a directory if any object lies below it (a missing bucket raises here).
    for _ in iter_blobs(root, f"{key}/" if key else "", recursive=False, page_size=1):
        return FileInfo(path, True)
    if not key:
        return FileInfo(path, True)  # the bucket's root is a directory even when empty
    raise NotFound(f"nothing at {root.uri(key)} (endpoint {root.endpoint})")


def iter_blobs(
    root: GCSRoot, prefix: str, recursive: bool, page_size: int | None = None
) -> Iterator[Blob | str]:
    """Objects (Blob) and, without ``recursive``, sub-prefixes (str, ending in '/') below ``prefix``."""
    with translated(root, prefix.rstrip("/") or None):
        blobs = root.client.storage.list_blobs(
            root.bucket,
            prefix=prefix or None,
            delimiter=None if recursive else "/",  # "/": direct children only
            fields=_LIST_FIELDS,
            page_size=page_size or PAGE_SIZE,
            timeout=root.config.timeout,
            retry=None,
        )
        for page in blobs.pages:
            yield from sorted(page.prefixes)
            yield from page
            if page_size is not None:
                return


@hookimpl(specname="list")  # "list" would shadow the builtin in this module
def list_entries(root: GCSRoot, path: str, recursive: bool) -> Iterator[FileInfo]:
    key = root.key(path)
    prefix = f"{key}/" if key else ""
    seen: set[str] = set()  # a prefix may come back on more than one page
    for item in iter_blobs(root, prefix, recursive):
        name = item if isinstance(item, str) else item.name
        if name.endswith("/"):
            # A sub-prefix, or a zero-byte directory marker (consoles make them): the
            # marker of the listed directory itself is no child, a deeper one is a directory.
            if recursive or name == prefix or name in seen:
                continue
            seen.add(name)
            yield FileInfo(root.rel(name[:-1]), True)
        elif not isinstance(item, str) and not name.rsplit("/", 1)[-1].startswith(TEMP_PREFIX):
            yield file_info(root.rel(name), item)  # (parts of uploads in progress are hidden)


@hookimpl
def upload(root: GCSRoot, path: str, local_file: str, progress: Progress, digest: str | None) -> None:
    # The core sends only files below one part's size here. Up to the upload chunk
    # size, one request; above (a raised multipart threshold), a resumable upload in
    # chunks of MLFLOW_GCS_UPLOAD_CHUNK_SIZE.
    key = root.key(path)
    size = os.path.getsize(local_file)
    chunk = root.config.upload_chunk_size
    blob = root.handle.blob(key, chunk_size=chunk if size > chunk else None)
    if digest is not None:
        blob.metadata = {DIGEST_KEY: digest}
    with translated(root, key):
        blob.upload_from_filename(
            local_file,
            content_type=content_type(key),
            checksum="crc32c",  # GCS checks what it received against the checksum sent
            timeout=root.config.timeout,
            retry=None,  # the engine retries, with backoff and a deadline
        )
    progress(size)


@hookimpl
def write(root: GCSRoot, path: str, chunks: Iterable[bytes], digest: str | None) -> None:
    # Less than one part (the core sends longer streams in parts), so buffering is fine;
    # a stream that breaks raises before anything is sent.
    data = b"".join(chunks)
    key = root.key(path)
    put_bytes(root, key, data, content_type(key), digest or sha256_hex(data))


def put_bytes(root: GCSRoot, key: str, data: bytes, ctype: str, digest: str | None = None) -> Blob:
    """Store ``data`` as the object ``key`` in one request (or chunks above the upload chunk size)."""
    chunk = root.config.upload_chunk_size
    blob = root.handle.blob(key, chunk_size=chunk if len(data) > chunk else None)
    if digest is not None:
        blob.metadata = {DIGEST_KEY: digest}
    with translated(root, key):
        blob.upload_from_string(
            data, content_type=ctype, checksum="crc32c", timeout=root.config.timeout, retry=None
        )
    return blob


def put_media(root: GCSRoot, key: str, data: bytes, ctype: str) -> dict[str, Any]:
    """Store ``data`` as ``key`` in one media upload, sent as is (no copy); its metadata back.

    The JSON API takes no checksum with a media upload, so the CRC32C GCS computed is
    compared with ours afterwards; a mismatch is an IntegrityError (retried, which
    overwrites the object). Used for the parts of composite uploads: temporaries no
    listing shows, whose holder replaces them on retry.
    """
    import google_crc32c

    url = (
        f"{root.client.endpoint}/upload/storage/v1/b/{quote(root.bucket, safe='')}/o"
        f"?uploadType=media&name={quote(key, safe='')}"
    )
    expected = google_crc32c.Checksum(data).hexdigest().decode()  # type: ignore[no-untyped-call]
    with translated(root, key):
        response = root.client.session.post(
            url, data=data, headers={"Content-Type": ctype}, timeout=root.config.timeout
        )
    with response:
        if response.status_code >= 400:
            raise from_response(response, root, key)
        resource: dict[str, Any] = response.json()
    stored = _hex(resource.get("crc32c"))
    if stored is not None and stored != expected:
        raise IntegrityError(
            f"{root.uri(key)}: GCS stored CRC32C {stored} for {len(data)} bytes whose CRC32C is {expected}"
        )
    return resource


@hookimpl
def download(root: GCSRoot, path: str, local_file: str, progress: Progress) -> None:
    with open(local_file, "wb") as f:
        for chunk in _ranges(root, root.key(path), 0, None):
            f.write(chunk)
            progress(len(chunk))


@hookimpl
def read(root: GCSRoot, path: str, offset: int, length: int | None) -> Iterator[bytes]:
    key = root.key(path)
    if length == 0:
        with translated(root, key):
            found = root.handle.get_blob(key, timeout=root.config.timeout, retry=None)
        if found is None:
            raise NotFound(f"no object {key!r} in GCS bucket {root.bucket!r} (endpoint {root.endpoint})")
        return iter(())
    return _ranges(root, key, offset, length)


def _ranges(root: GCSRoot, key: str, offset: int, length: int | None) -> Iterator[bytes]:
    """The bytes from ``offset``, in GETs of at most the download chunk size, all of one generation."""
    session, url = root.client.session, root.media_url(key)
    step = root.config.download_chunk_size
    end = None if length is None else offset + length  # exclusive
    position, generation = offset, None
    while end is None or position < end:
        stop = position + step if end is None else min(end, position + step)
        headers = {"Range": f"bytes={position}-{stop - 1}", "Accept-Encoding": "gzip"}
        with translated(root, key):
            response = session.get(
                url if generation is None else f"{url}&generation={generation}",
                headers=headers,
                stream=True,
                timeout=root.config.timeout,
            )
        with response:
            if response.status_code == 416:
                return  # the range starts at or past the end (an empty object, at 0)
            if response.status_code >= 400:
                raise from_response(response, root, key)
            generation = generation or response.headers.get("x-goog-generation")
            received = 0
            with translated(root, key):
                # The stored bytes as they are (no decoding of a gzip Content-Encoding),
                # so they match the object's size and CRC32C.
                for data in response.raw.stream(_CHUNK, decode_content=False):
                    received += len(data)
                    yield data
        total = _total(response)
        position += received
        if response.status_code == 200 or received == 0 or (total is not None and position >= total):
            return  # the whole object came (a server without ranges), or its end was reached


def _total(response: Any) -> int | None:
    content_range = response.headers.get("Content-Range", "")
    total = content_range.rpartition("/")[2]
    return int(total) if total.isdigit() else None


@hookimpl
def delete(root: GCSRoot, path: str) -> None:
    key = root.key(path)
    names: list[str] = (
        [key] if key and root.handle.get_blob(key, timeout=root.config.timeout, retry=None) else []
    )
    # Only the object itself and objects below "key/": deleting "foo" never touches "foobar".
    below = iter_blobs(root, f"{key}/" if key else "", recursive=True)
    found = delete_objects(root, itertools.chain(names, (b.name for b in below if not isinstance(b, str))))
    if not found:
        raise NotFound(f"nothing at {root.uri(key)} (endpoint {root.endpoint})")


#: Deletes of one tree in flight at once. GCS deletes one object per request; its JSON
#: batch endpoint would take 100 per request, but the emulator the tests run against
#: (fake-gcs-server) cannot serve it, so concurrent requests stand in: a few per
#: connection of the pool, never more than it holds.
DELETE_CONCURRENCY = 16


def delete_objects(root: GCSRoot, names: Iterable[str]) -> int:
    """Delete every object named (as the listing yields them, deleting while it goes on); how many."""
    workers = max(1, min(DELETE_CONCURRENCY, root.config.max_pool_connections // 2))
    count = 0
    with ThreadPoolExecutor(workers, thread_name_prefix="mlartifacts-gcs-delete") as pool:
        pending: set[Future[None]] = set()
        try:
            for name in names:
                count += 1
                if len(pending) >= 2 * workers:
                    done, pending = wait(pending, return_when=FIRST_COMPLETED)
                    for future in done:
                        future.result()  # the first failure stops the tree's delete
                pending.add(pool.submit(_delete_one, root, name))
            for future in pending:
                future.result()
        except BaseException:
            pool.shutdown(wait=True, cancel_futures=True)
            raise
    return count


def _delete_one(root: GCSRoot, name: str) -> None:
    from google.api_core.exceptions import NotFound as Missing

    with translated(root, name):
        try:
            root.handle.delete_blob(name, timeout=root.config.timeout, retry=None)
        except Missing:
            pass  # deleted meanwhile: the goal is reached


@hookimpl
def copy(root: GCSRoot, path: str, dst_root: GCSRoot, dst_path: str) -> None:
    if dst_root.config != root.config:
        raise NotSupported(
            f"server-side copy from {root.uri()} to {dst_root.uri()}: they were resolved with "
            "different GCS settings (credentials, emulator...)"
        )
    src_key, dst_key = root.key(path), dst_root.key(dst_path)
    source = root.handle.blob(src_key)
    target = dst_root.handle.blob(dst_key)
    token: str | None = None
    with translated(root, src_key):
        # A rewrite copies inside GCS in steps (large objects, other locations or classes).
        while True:
            token, _, _ = target.rewrite(source, token=token, timeout=root.config.timeout, retry=None)
            if token is None:
                return
