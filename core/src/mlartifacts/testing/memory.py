"""The in-memory reference backend: an object store in a dict, for tests of the core.

``memory://<bucket>/<prefix>``. It behaves like an object store (directories are
key prefixes), supports multipart upload with S3's rules (every part but the last
at least ``min_part_size``), ranged reads, server-side copy and MD5 checksums, and
can inject failures so retries, aborts and timeouts are testable::

    backend = MemoryBackend(limits=MultipartLimits(1024, 1 << 20, 1000))
    backend.inject("upload_part", TransientError("503 Slow Down"), times=2)
"""

from __future__ import annotations

import hashlib
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Callable, Iterable, Iterator, Sequence
from urllib.parse import unquote, urlsplit

from .._types import (
    Capabilities,
    Checksum,
    FileInfo,
    MiB,
    MultipartLimits,
    Part,
    PendingUpload,
)
from ..errors import BackendError, InvalidPath, InvalidUri, NotFound, TransientError
from ..hookspecs import Progress, hookimpl
from ..paths import join, normalize

__all__ = ["MemoryBackend", "MemoryRoot", "plugin"]


#: S3's multipart limits, the default: 5 MiB to 5 GiB parts, at most 10,000.
S3_LIMITS = MultipartLimits(5 * MiB, 5 * 1024 * MiB, 10_000)


@dataclass(frozen=True)
class MemoryRoot:
    bucket: str
    prefix: str

    def key(self, path: str) -> str:
        return "/".join(p for p in (self.prefix, path) if p)


@dataclass
class _Object:
    data: bytes
    md5: str
    modified: float


@dataclass
class _Fault:
    hook: str
    error: Callable[[], BaseException] | None
    times: int
    delay: float
    corrupt: bool
    path: str | None


@dataclass
class _Upload:
    bucket: str
    key: str
    initiated: float
    parts: dict[int, bytes] = field(default_factory=dict)
    etags: dict[int, str] = field(default_factory=dict)


class MemoryBackend:
    """An object store in memory, registered as a plugin (a class with ``@hookimpl`` methods).

    Args:
        limits: multipart limits; None disables multipart upload.
        chunk_size: size of the chunks ``read`` yields.
        scheme: the URI scheme to claim.
        batch: offer batch transfers (``upload_batch`` / ``download_batch``).
    """

    def __init__(
        self,
        limits: MultipartLimits | None = S3_LIMITS,
        *,
        chunk_size: int = 256 * 1024,
        scheme: str = "memory",
        batch: bool = False,
    ) -> None:
        self.limits = limits
        self.batch = batch
        self.chunk_size = chunk_size
        self.scheme = scheme
        self.calls: list[tuple[str, str]] = []  # (hook, key) of every operation, in order
        self._buckets: dict[str, dict[str, _Object]] = {}
        self._uploads: dict[str, _Upload] = {}
        self._faults: list[_Fault] = []
        self._lock = threading.Lock()

    # -- test helpers -------------------------------------------------------------------------

    def inject(
        self,
        hook: str,
        error: BaseException | type[BaseException] | None = TransientError,
        *,
        times: int = 1,
        delay: float = 0.0,
        corrupt: bool = False,
        path: str | None = None,
    ) -> None:
        """Make the next ``times`` calls of ``hook`` fail, stall or corrupt their data.

        Args:
            error: raised by the call (an instance or a class); None to not raise.
            delay: seconds the call sleeps first (a stalled backend).
            corrupt: ``read``/``download`` return wrong bytes instead of failing.
            path: only calls for this key are affected.
        """
        if isinstance(error, BaseException):
            instance = error
            factory: Callable[[], BaseException] | None = lambda: instance  # noqa: E731
        elif error is not None:
            cls = error
            factory = lambda: cls(f"injected failure of {hook}")  # noqa: E731
        else:
            factory = None
        with self._lock:
            self._faults.append(_Fault(hook, factory, times, delay, corrupt, path))

    def objects(self, bucket: str) -> dict[str, bytes]:
        """A snapshot of a bucket: key -> bytes."""
        with self._lock:
            return {key: obj.data for key, obj in self._buckets.get(bucket, {}).items()}

    def pending_uploads(self) -> list[str]:
        """Keys of multipart uploads neither completed nor aborted."""
        with self._lock:
            return [upload.key for upload in self._uploads.values()]

    def count(self, hook: str) -> int:
        """How many times ``hook`` was called."""
        with self._lock:
            return sum(1 for name, _ in self.calls if name == hook)

    def _enter(self, hook: str, key: str) -> _Fault | None:
        with self._lock:
            self.calls.append((hook, key))
            for fault in self._faults:
                if fault.hook == hook and fault.times > 0 and fault.path in (None, key):
                    fault.times -= 1
                    break
            else:
                return None
        if fault.delay:
            time.sleep(fault.delay)
        if fault.error is not None and not fault.corrupt:
            raise fault.error()
        return fault

    def _bucket(self, root: MemoryRoot) -> dict[str, _Object]:
        return self._buckets.setdefault(root.bucket, {})

    def _get(self, root: MemoryRoot, path: str) -> _Object:
        key = root.key(path)
        with self._lock:
            obj = self._buckets.get(root.bucket, {}).get(key)
        if obj is None:
            raise NotFound(f"no object {key!r} in memory bucket {root.bucket!r}")
        return obj

    def _put(self, root: MemoryRoot, path: str, data: bytes) -> None:
        obj = _Object(data, hashlib.md5(data).hexdigest(), time.time())
        with self._lock:
            self._bucket(root)[root.key(path)] = obj

    # -- the contract ---------------------------------------------------------------------------

    @hookimpl
    def schemes(self) -> Sequence[str]:
        return [self.scheme]

    @hookimpl
    def resolve_uri(self, uri: str) -> MemoryRoot:
        parts = urlsplit(uri)
        if parts.query or parts.fragment:
            raise InvalidUri(f"memory URIs take no query or fragment: {uri!r}")
        try:
            prefix = normalize(unquote(parts.path).strip("/"))
        except InvalidPath as exc:
            raise InvalidUri(f"{uri!r}: {exc}") from None
        return MemoryRoot(parts.netloc, prefix)

    @hookimpl
    def capabilities(self) -> Capabilities:
        return Capabilities(
            ranged_read=True,
            server_side_copy=True,
            list_multipart_uploads=True,
            list_parts=True,
            batch=self.batch,
        )

    @hookimpl
    def supports_multipart(self) -> MultipartLimits | None:
        return self.limits

    @hookimpl
    def stat(self, root: MemoryRoot, path: str) -> FileInfo:
        key = root.key(path)
        self._enter("stat", key)
        with self._lock:
            bucket = self._buckets.get(root.bucket, {})
            obj = bucket.get(key)
            if obj is not None:
                return FileInfo(
                    path,
                    False,
                    len(obj.data),
                    checksum=Checksum("md5", obj.md5),
                    etag=obj.md5,
                    modified=obj.modified,
                )
            prefix = key + "/" if key else ""
            if any(k.startswith(prefix) for k in bucket):
                return FileInfo(path, True)
        raise NotFound(f"nothing at {key!r} in memory bucket {root.bucket!r}")

    @hookimpl(specname="list")
    def list_entries(self, root: MemoryRoot, path: str, recursive: bool) -> Iterator[FileInfo]:
        key = root.key(path)
        self._enter("list", key)
        prefix = key + "/" if key else ""
        strip = len(root.prefix) + 1 if root.prefix else 0
        with self._lock:
            items = sorted(
                (k, obj) for k, obj in self._buckets.get(root.bucket, {}).items() if k.startswith(prefix)
            )
        seen: set[str] = set()
        for k, obj in items:
            rest = k[len(prefix) :]
            if not recursive and "/" in rest:
                child = rest.split("/", 1)[0]
                if child not in seen:
                    seen.add(child)
                    yield FileInfo((prefix + child)[strip:], True)
                continue
            yield FileInfo(k[strip:], False, len(obj.data), checksum=Checksum("md5", obj.md5))

    @hookimpl
    def upload(self, root: MemoryRoot, path: str, local_file: str, progress: Progress) -> None:
        self._enter("upload", root.key(path))
        pieces = []
        with open(local_file, "rb") as f:
            for block in iter(lambda: f.read(self.chunk_size), b""):
                pieces.append(block)
                progress(len(block))
        self._put(root, path, b"".join(pieces))

    @hookimpl
    def write(self, root: MemoryRoot, path: str, chunks: Iterable[bytes]) -> None:
        self._enter("write", root.key(path))
        self._put(root, path, b"".join(chunks))

    @hookimpl
    def download(self, root: MemoryRoot, path: str, local_file: str, progress: Progress) -> None:
        fault = self._enter("download", root.key(path))
        data = self._get(root, path).data
        if fault is not None and fault.corrupt:
            data = _corrupted(data)
        with open(local_file, "wb") as f:
            for start in range(0, len(data), self.chunk_size):
                block = data[start : start + self.chunk_size]
                f.write(block)
                progress(len(block))

    @hookimpl
    def read(self, root: MemoryRoot, path: str, offset: int, length: int | None) -> Iterator[bytes]:
        fault = self._enter("read", root.key(path))
        data = self._get(root, path).data
        end = len(data) if length is None else min(len(data), offset + length)
        if fault is not None and fault.corrupt:
            end = max(offset, end - 1)  # a truncated response
        for start in range(offset, end, self.chunk_size):
            yield data[start : min(end, start + self.chunk_size)]

    @hookimpl
    def upload_batch(self, root: MemoryRoot, path: str, files: Iterable[tuple[str, bytes]]) -> None:
        self._enter("upload_batch", root.key(path))
        for name, data in files:
            self._put(root, join(path, name), data)

    @hookimpl
    def download_batch(
        self, root: MemoryRoot, path: str, names: Sequence[str]
    ) -> Iterator[tuple[str, bytes]]:
        fault = self._enter("download_batch", root.key(path))
        for i, name in enumerate(names):
            data = self._get(root, join(path, name)).data
            if fault is not None and fault.corrupt and i == len(names) // 2:
                data = data[:-1]  # a short file halfway through the batch
            yield name, data

    @hookimpl
    def delete(self, root: MemoryRoot, path: str) -> None:
        key = root.key(path)
        self._enter("delete", key)
        prefix = key + "/" if key else ""
        with self._lock:
            bucket = self._buckets.get(root.bucket, {})
            doomed = [k for k in bucket if k == key or k.startswith(prefix)]
            for k in doomed:
                del bucket[k]
        if not doomed:
            raise NotFound(f"nothing at {key!r} in memory bucket {root.bucket!r}")

    @hookimpl
    def create_multipart(self, root: MemoryRoot, path: str) -> str:
        key = root.key(path)
        self._enter("create_multipart", key)
        upload_id = uuid.uuid4().hex
        with self._lock:
            self._uploads[upload_id] = _Upload(root.bucket, key, time.time())
        return upload_id

    def _upload(self, upload_id: str) -> _Upload:
        upload = self._uploads.get(upload_id)
        if upload is None:
            raise NotFound(f"no multipart upload {upload_id!r} (NoSuchUpload)")
        return upload

    @hookimpl
    def upload_part(self, root: MemoryRoot, path: str, upload_id: str, part_number: int, data: bytes) -> str:
        self._enter("upload_part", root.key(path))
        if self.limits is not None and not 1 <= part_number <= self.limits.max_parts:
            raise BackendError(f"part number {part_number} out of range (InvalidArgument)")
        etag = f'"{hashlib.md5(data).hexdigest()}"'
        with self._lock:
            upload = self._upload(upload_id)
            upload.parts[part_number] = bytes(data)
            upload.etags[part_number] = etag
        return etag

    @hookimpl
    def complete_multipart(self, root: MemoryRoot, path: str, upload_id: str, parts: Sequence[Part]) -> None:
        self._enter("complete_multipart", root.key(path))
        with self._lock:
            upload = self._upload(upload_id)
            numbers = [p.part_number for p in parts]
            if numbers != sorted(set(numbers)) or not numbers:
                raise BackendError(f"parts must be listed once each in ascending order, got {numbers}")
            chosen = []
            for part in parts:
                data = upload.parts.get(part.part_number)
                if data is None or part.etag != f'"{hashlib.md5(data).hexdigest()}"':
                    raise BackendError(
                        f"part {part.part_number} is missing or its ETag differs (InvalidPart)"
                    )
                chosen.append(data)
            if self.limits is not None and any(len(d) < self.limits.min_part_size for d in chosen[:-1]):
                raise BackendError(
                    f"a part other than the last is smaller than {self.limits.min_part_size} bytes "
                    "(EntityTooSmall)"
                )
            del self._uploads[upload_id]
        self._put(root, path, b"".join(chosen))

    @hookimpl
    def abort_multipart(self, root: MemoryRoot, path: str, upload_id: str) -> None:
        self._enter("abort_multipart", root.key(path))
        with self._lock:
            self._uploads.pop(upload_id, None)

    @hookimpl
    def list_parts(self, root: MemoryRoot, path: str, upload_id: str) -> list[Part]:
        self._enter("list_parts", root.key(path))
        with self._lock:
            upload = self._upload(upload_id)
            if upload.bucket != root.bucket or upload.key != root.key(path):
                raise NotFound(f"no multipart upload {upload_id!r} of {root.key(path)!r} (NoSuchUpload)")
            return [Part(n, upload.etags[n], size=len(data)) for n, data in sorted(upload.parts.items())]

    @hookimpl
    def list_multipart_uploads(self, root: MemoryRoot, path: str) -> Iterator[PendingUpload]:
        key = root.key(path)
        self._enter("list_multipart_uploads", key)
        strip = len(root.prefix) + 1 if root.prefix else 0
        with self._lock:
            uploads = [(uid, u) for uid, u in self._uploads.items() if u.bucket == root.bucket]
        for upload_id, upload in uploads:
            if not key or upload.key == key or upload.key.startswith(key + "/"):
                yield PendingUpload(upload.key[strip:], upload_id, upload.initiated)

    @hookimpl
    def copy(self, root: MemoryRoot, path: str, dst_root: MemoryRoot, dst_path: str) -> None:
        self._enter("copy", root.key(path))
        self._put(dst_root, dst_path, self._get(root, path).data)


def _corrupted(data: bytes) -> bytes:
    if not data:
        return b"\0"
    return bytes([data[0] ^ 0xFF]) + data[1:]


#: The instance the ``memory`` entry point registers.
plugin = MemoryBackend()
