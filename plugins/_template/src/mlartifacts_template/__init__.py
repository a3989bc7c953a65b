"""A minimal mlartifacts backend over a dictionary: replace the dict with your SDK.

Only the required hooks are implemented. The core does the rest for every
backend: path checks, parallelism, retries, timeouts, progress, atomic local
files and download verification.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from mlartifacts import FileInfo, hookimpl
from mlartifacts.errors import InvalidUri, NotFound
from mlartifacts.hookspecs import Progress

# Import your SDK inside the hooks (or in a helper they call), never at module
# level: `import mlartifacts` and `mlartifacts plugins` load this module, and must
# stay fast for users who never touch your backend.

_BUCKETS: dict[str, dict[str, bytes]] = {}
# Each object's SHA-256, recorded with it (your store: its metadata). See "Digests" in
# docs/plugin-authors.md: stat and list return it, and downloads are checked against it.
_DIGESTS: dict[tuple[str, str], str] = {}
_LOCK = threading.Lock()
_CHUNK = 64 * 1024


@dataclass(frozen=True)
class Root:
    """What resolve_uri makes of a URI; every other hook receives it back."""

    bucket: str
    prefix: str

    def key(self, path: str) -> str:
        return f"{self.prefix}/{path}" if self.prefix and path else self.prefix or path


@hookimpl
def schemes() -> Sequence[str]:
    return ["template"]


@hookimpl
def resolve_uri(uri: str) -> Root:
    parts = urlsplit(uri)
    if not parts.netloc:
        raise InvalidUri(f"{uri!r}: expected template://<bucket>/<prefix>")
    return Root(parts.netloc, parts.path.strip("/"))


def _objects(root: Root) -> dict[str, bytes]:
    with _LOCK:
        return dict(_BUCKETS.get(root.bucket, {}))


def _put(root: Root, path: str, data: bytes, digest: str | None) -> None:
    with _LOCK:  # one assignment: the object appears whole or not at all
        _BUCKETS.setdefault(root.bucket, {})[root.key(path)] = data
        _DIGESTS[root.bucket, root.key(path)] = digest or hashlib.sha256(data).hexdigest()


def _digest(root: Root, key: str) -> str | None:
    with _LOCK:
        return _DIGESTS.get((root.bucket, key))


def _get(root: Root, path: str) -> bytes:
    data = _objects(root).get(root.key(path))
    if data is None:
        # Translate "missing" into the core's NotFound, saying what and where.
        raise NotFound(f"no object {root.key(path)!r} in bucket {root.bucket!r}")
    return data


@hookimpl
def stat(root: Root, path: str) -> FileInfo:
    key = root.key(path)
    objects = _objects(root)
    if key in objects:
        return FileInfo(path, False, len(objects[key]), digest=_digest(root, key))
    if any(k.startswith(f"{key}/" if key else "") for k in objects):
        return FileInfo(path, True)
    raise NotFound(f"nothing at {key!r} in bucket {root.bucket!r}")


@hookimpl(specname="list")  # "list" would shadow the builtin in this module
def list_entries(root: Root, path: str, recursive: bool) -> Iterator[FileInfo]:
    prefix = f"{root.key(path)}/" if root.key(path) else ""
    strip = len(root.prefix) + 1 if root.prefix else 0
    children: set[str] = set()
    for key, data in sorted(_objects(root).items()):
        if not key.startswith(prefix):
            continue
        rest = key[len(prefix) :]
        if "/" in rest and not recursive:
            child = prefix + rest.split("/", 1)[0]
            if child not in children:
                children.add(child)
                yield FileInfo(child[strip:], True)
        else:
            yield FileInfo(key[strip:], False, len(data), digest=_digest(root, key))


@hookimpl
def upload(root: Root, path: str, local_file: str, progress: Progress, digest: str | None) -> None:
    with open(local_file, "rb") as f:
        data = f.read()
    progress(len(data))
    _put(root, path, data, digest)  # digest: the file's SHA-256, computed by the engine


@hookimpl
def write(root: Root, path: str, chunks: Iterable[bytes], digest: str | None) -> None:
    _put(root, path, b"".join(chunks), digest)


@hookimpl
def download(root: Root, path: str, local_file: str, progress: Progress) -> None:
    data = _get(root, path)
    with open(local_file, "wb") as f:
        f.write(data)
    progress(len(data))


@hookimpl
def read(root: Root, path: str, offset: int, length: int | None) -> Iterator[bytes]:
    # Without the ranged_read capability the core only asks for the whole object.
    data = _get(root, path)
    return iter([data[i : i + _CHUNK] for i in range(0, len(data), _CHUNK)])


@hookimpl
def delete(root: Root, path: str) -> None:
    key = root.key(path)
    with _LOCK:
        bucket = _BUCKETS.get(root.bucket, {})
        doomed = [k for k in bucket if k == key or k.startswith(f"{key}/" if key else "")]
        for k in doomed:
            del bucket[k]
            _DIGESTS.pop((root.bucket, k), None)
    if not doomed:
        raise NotFound(f"nothing at {key!r} in bucket {root.bucket!r}")
