"""``PathStorePlugin``: every hook of a path store, derived from its primitives.

A path-store plugin is its primitives (a :class:`PathFileSystem`) and a function
that parses its URIs; this object is what it registers (its entry point names it).
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import replace
from typing import Callable, Iterable, Iterator, Sequence, TypeVar

from .._redact import redact_uri
from .._types import Capabilities, FileInfo, PendingUpload
from ..config import Settings
from ..errors import ArtifactError, InvalidPath, NotFound
from ..hookspecs import Progress, hookimpl
from ..paths import TEMP_PREFIX
from ._digests import SMALL_FILE, digest_beside, read_digest, read_record, stored_sha256
from ._files import CallerError, not_a_file, open_reader, read_blocks, write_atomically, write_stream
from ._protocol import PathFileSystem
from ._root import PathRoot
from ._tree import children, delete, temporaries, walk_files

__all__ = ["PathStorePlugin", "Resolver"]

T = TypeVar("T")

#: Parses a URI of a claimed scheme: the store's filesystem (shared per server and
#: login) and the root's path on it. Raises InvalidUri.
Resolver = Callable[[str, Settings], "tuple[PathFileSystem, str]"]


class PathStorePlugin:
    """The hooks of a path store, derived from the primitives its resolver's filesystem provides.

    Args:
        schemes: the URI schemes claimed ('' for plain paths).
        resolve: ``resolve(uri, settings) -> (filesystem, base path)``.
        capabilities: what the store offers beyond the required hooks; server-side
            copy is added where the filesystem has the ``copy`` primitive.
    """

    def __init__(
        self,
        *,
        schemes: Sequence[str],
        resolve: Resolver,
        capabilities: Capabilities = Capabilities(ranged_read=True, hashes_uploads=True),  # noqa: B008
    ) -> None:
        self._schemes = list(schemes)
        self._resolve = resolve
        self._capabilities = capabilities

    def __repr__(self) -> str:
        return f"<PathStorePlugin {self._schemes}>"

    # -- the boundary: SDK errors become mlartifacts errors here, once ----------------------

    @contextlib.contextmanager
    def _errors(self, root: PathRoot, path: str, op: str) -> Iterator[None]:
        try:
            yield
        except CallerError as exc:
            raise exc.__cause__ or exc from None  # the caller's own error, as it was raised
        except ArtifactError:
            raise
        except Exception as exc:
            raise root.fs.translate(exc, root.where(path), op) from exc

    def _stream(self, root: PathRoot, path: str, op: str, chunks: Iterator[T]) -> Iterator[T]:
        with self._errors(root, path, op):
            yield from chunks

    # -- hooks --------------------------------------------------------------------------

    @hookimpl
    def schemes(self) -> Sequence[str]:
        return self._schemes

    @hookimpl
    def resolve_uri(self, uri: str, settings: Settings | None) -> PathRoot:
        settings = settings if settings is not None else Settings.from_env()
        fs, base = self._resolve(uri, settings)
        return PathRoot(fs, base, redact_uri(uri), settings.digests)

    @hookimpl
    def capabilities(self, root: PathRoot | None) -> Capabilities:
        # The temporaries of interrupted writes are listed (and removed) as incomplete uploads;
        # every upload is hashed here, as it is copied (so the engine does not read it first).
        caps = replace(self._capabilities, list_multipart_uploads=True, hashes_uploads=True)
        if root is not None and root.fs.has("copy") and not caps.server_side_copy:
            caps = replace(caps, server_side_copy=True)
        return caps

    @hookimpl
    def stat(self, root: PathRoot, path: str) -> FileInfo:
        with self._errors(root, path, "stat"):
            info = root.fs.stat(root.path(path))
        if info is None:
            raise NotFound(f"no such file or directory: {root.where(path)}")
        if info.is_dir:
            return FileInfo(path, True, modified=info.modified)
        digest, stale = read_record(root.fs, root.path(path), info.size, info.modified)
        return FileInfo(path, False, info.size, modified=info.modified, digest=digest, stale_digest=stale)

    @hookimpl(specname="list")
    def list_entries(self, root: PathRoot, path: str, recursive: bool) -> Iterable[FileInfo]:
        if recursive:
            return self._stream(root, path, "list", walk_files(root, path))
        with self._errors(root, path, "list"):
            return [info for info, _ in children(root, root.path(path), path)]

    @hookimpl
    def upload(
        self, root: PathRoot, path: str, local_file: str, progress: Progress, digest: str | None
    ) -> None:
        fs = root.fs
        with self._errors(root, path, "upload"):
            if fs.has("put_file"):
                small = _small_file(local_file) if root.digests and digest is None else None
                if small is not None:
                    # Read once, hashed and written from that buffer: for a small file, cheaper
                    # than a kernel copy plus a second read to hash it, and nothing can race it.
                    write_stream(root, path, (small,), progress)
                    return
                self._put_file(root, path, local_file, progress, digest)
                return
            with open(local_file, "rb") as src:
                write_stream(root, path, iter(lambda: src.read(fs.block_size), b""), progress, digest)

    @staticmethod
    def _put_file(root: PathRoot, path: str, local_file: str, progress: Progress, digest: str | None) -> None:
        """Upload through the store's own copy (the local disk: in the kernel), hashed beside it.

        The SHA-256 is computed meanwhile on another thread, from the same cached pages.
        If the source may have changed while it was copied, the copy itself is read back
        and hashed: the digest recorded is always that of the bytes stored.
        """
        fs = root.fs
        hashed = digest_beside(local_file) if digest is None and root.digests else None
        temps: list[str] = []

        def fill(temp: str) -> None:
            temps.append(temp)
            fs.put_file(local_file, temp, progress)

        def known() -> str | None:
            if hashed is None:
                return digest
            return hashed.result() or stored_sha256(fs, temps[-1])

        try:
            write_atomically(root, path, fill, digest=known)
        finally:
            if hashed is not None:
                hashed.cancel()  # never leave the thread reading a file being replaced

    @hookimpl
    def write(self, root: PathRoot, path: str, chunks: Iterable[bytes], digest: str | None) -> None:
        with self._errors(root, path, "write"):
            write_stream(root, path, chunks, None, digest)

    @hookimpl
    def download(self, root: PathRoot, path: str, local_file: str, progress: Progress) -> None:
        fs = root.fs
        with self._errors(root, path, "download"):
            if fs.has("get_file"):
                try:
                    fs.get_file(root.path(path), local_file, progress)
                except Exception as exc:
                    raise not_a_file(root, path, exc, "download") from exc
                return
            reader = open_reader(root, path, 0, None, "download")
            with open(local_file, "wb") as dst:
                for block in read_blocks(reader, None, fs.block_size):
                    dst.write(block)
                    progress(len(block))

    @hookimpl
    def read(self, root: PathRoot, path: str, offset: int, length: int | None) -> Iterator[bytes]:
        with self._errors(root, path, "read"):
            reader = open_reader(root, path, offset, length, "read")  # a missing file fails now
        return self._stream(root, path, "read", read_blocks(reader, length, root.fs.block_size))

    @hookimpl
    def delete(self, root: PathRoot, path: str) -> None:
        with self._errors(root, path, "delete"):
            delete(root, path)

    @hookimpl
    def copy(self, root: PathRoot, path: str, dst_root: PathRoot, dst_path: str) -> None:
        fs = root.fs
        with self._errors(dst_root, dst_path, "copy"):
            if fs.has("copy") and dst_root.fs is fs:
                source = root.path(path)
                info = fs.stat(source)
                known = read_digest(fs, source, info.size, info.modified) if info is not None else None
                write_atomically(dst_root, dst_path, lambda temp: fs.copy(source, temp), digest=lambda: known)
                return
            # Another filesystem of this plugin (another server, other settings): stream it.
            reader = open_reader(root, path, 0, None, "copy")
            try:
                write_stream(dst_root, dst_path, read_blocks(reader, None, fs.block_size), None)
            finally:
                reader.close()  # if the write failed before reading began

    @hookimpl
    def list_multipart_uploads(self, root: PathRoot, path: str) -> Iterable[PendingUpload]:
        # A temporary is an upload that never completed: its directory is the path, its
        # name the id, its age the modification time (None where the store has none).
        for directory, entry in self._stream(root, path, "gc", temporaries(root, path)):
            yield PendingUpload(directory, entry.name, entry.modified, entry.size)

    @hookimpl
    def abort_multipart(self, root: PathRoot, path: str, upload_id: str) -> None:
        if not upload_id.startswith(TEMP_PREFIX) or "/" in upload_id or "\\" in upload_id:
            raise InvalidPath(f"{upload_id!r} is not the name of one of this store's temporaries")
        fs = root.fs
        with self._errors(root, path, "gc"):
            temp = fs.pathmod.join(root.path(path), upload_id)
            if fs.stat(temp, follow=False) is not None:  # already gone: nothing to free
                fs.remove(temp)


def _small_file(local_file: str) -> bytes | None:
    """The whole content of ``local_file`` if it is at most :data:`SMALL_FILE` bytes, else None."""
    with open(local_file, "rb", buffering=0) as src:
        if os.fstat(src.fileno()).st_size > SMALL_FILE:
            return None
        data = src.read(SMALL_FILE + 1)  # one read (+1: it may have grown meanwhile)
    return data if len(data) <= SMALL_FILE else None
