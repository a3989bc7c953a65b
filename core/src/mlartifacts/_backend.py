"""A plugin bound to one resolved root: the typed face the rest of the core calls.

Nothing outside this module calls pluggy hooks. Every call is routed to the one
plugin that claimed the URI, and anything it raises that is not already an
:class:`ArtifactError` is translated here, once, with the operation and the
location in the message.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any, Callable, Iterable, Iterator, Sequence, TypeVar

from . import paths as _paths
from ._redact import redact_uri
from ._registry import PluginHandle
from ._types import Capabilities, FileInfo, MultipartLimits, Part, PendingUpload, PresignedUrl
from .errors import (
    AlreadyExists,
    ArtifactError,
    BackendError,
    InvalidPath,
    NotFound,
    NotSupported,
    PermissionDenied,
    TransientError,
)

__all__ = ["Backend", "redact_uri", "translate_error"]

T = TypeVar("T")

log = logging.getLogger("mlartifacts")

# Built-in exceptions a plugin may let escape, and what they mean to us. Order
# matters: subclasses before their bases.
_BUILTIN_ERRORS: tuple[tuple[type[BaseException], type[ArtifactError]], ...] = (
    (FileNotFoundError, NotFound),
    (FileExistsError, AlreadyExists),
    (PermissionError, PermissionDenied),
    (NotADirectoryError, InvalidPath),
    (IsADirectoryError, InvalidPath),
    (ConnectionError, TransientError),
    (TimeoutError, TransientError),
    (NotImplementedError, NotSupported),
)


def translate_error(exc: Exception, message: str) -> ArtifactError:
    """The :class:`ArtifactError` for an exception a plugin did not translate itself."""
    for builtin, ours in _BUILTIN_ERRORS:
        if isinstance(exc, builtin):
            return ours(f"{message}: {exc}")
    return BackendError(f"{message}: {type(exc).__name__}: {exc}")


class Backend:
    """One plugin and one root (what ``resolve_uri`` returned for ``uri``)."""

    def __init__(self, handle: PluginHandle, root: Any, uri: str) -> None:
        self.handle = handle
        self.root = root
        self.uri = uri
        self.display_uri = redact_uri(uri)  # what messages show: never a password

    @property
    def name(self) -> str:
        """The plugin's name."""
        return self.handle.name

    def where(self, path: str) -> str:
        """A human-readable location for messages: the URI with the path appended."""
        return f"{self.display_uri.rstrip('/')}/{path}" if path else self.display_uri

    def __repr__(self) -> str:
        return f"<Backend {self.name} {self.display_uri!r}>"

    # -- plumbing ------------------------------------------------------------------

    def _located(self, exc: ArtifactError, hook: str, path: str) -> ArtifactError:
        # Every error says what failed and where, even if the plugin's message doesn't.
        where = self.where(path)
        if where not in exc.message:
            exc.message = f"{hook} {where}: {exc.message}"
        return exc

    def _call(self, hook: str, path: str, **kwargs: Any) -> Any:
        try:
            return self.handle.call(hook, root=self.root, path=path, **kwargs)
        except ArtifactError as exc:
            raise self._located(exc, hook, path)  # noqa: B904 - re-raising the same object
        except Exception as exc:
            raise translate_error(exc, f"{hook} {self.where(path)}") from exc

    def _iterate(self, hook: str, path: str, iterable: Iterable[T]) -> Iterator[T]:
        iterator = iter(iterable)
        try:
            while True:
                try:
                    item = next(iterator)
                except StopIteration:
                    return
                except ArtifactError as exc:
                    raise self._located(exc, hook, path)  # noqa: B904 - re-raising the same object
                except Exception as exc:
                    raise translate_error(exc, f"{hook} {self.where(path)}") from exc
                yield item
        finally:
            close = getattr(iterator, "close", None)
            if close is not None:
                close()

    # -- capabilities ----------------------------------------------------------------

    # Computed once per instance. Not functools.cached_property: before Python 3.12 it
    # holds one lock per *class* while computing, so a backend asking a remote server
    # (the artifacts-service client) would block every other Backend in the process.

    @property
    def capabilities(self) -> Capabilities:
        """The backend's optional features at this root."""
        caps = self.__dict__.get("_capabilities")
        if caps is None:
            found = (
                self.handle.call("capabilities", root=self.root)
                if self.handle.implements("capabilities")
                else None
            )
            caps = found if isinstance(found, Capabilities) else Capabilities()
            self.__dict__["_capabilities"] = caps
        return caps

    @property
    def multipart_limits(self) -> MultipartLimits | None:
        """Multipart limits at this root, or None when the backend has no multipart upload."""
        if "_multipart_limits" not in self.__dict__:
            found = (
                self.handle.call("supports_multipart", root=self.root)
                if self.handle.implements("supports_multipart")
                else None
            )
            self.__dict__["_multipart_limits"] = found if isinstance(found, MultipartLimits) else None
        limits: MultipartLimits | None = self.__dict__["_multipart_limits"]
        return limits

    def require(self, capability: str) -> None:
        """Raise NotSupported unless the backend has ``capability``."""
        if capability == "multipart":
            ok = self.multipart_limits is not None
        else:
            ok = bool(getattr(self.capabilities, capability))
        if not ok:
            what = capability.replace("_", " ")
            raise NotSupported(f"the '{self.name}' backend does not support {what} (at {self.display_uri})")

    # -- required operations -----------------------------------------------------------

    def stat(self, path: str) -> FileInfo:
        """The file or directory at ``path``; NotFound when nothing is there."""
        info = self._call("stat", path)
        if not isinstance(info, FileInfo):
            raise BackendError(f"stat {self.where(path)}: the plugin returned {info!r}")
        return info

    def list(self, path: str, recursive: bool = False) -> Iterator[FileInfo]:
        """Entries below ``path`` (re-validated, temporaries hidden)."""
        entries = self._call("list", path, recursive=recursive)
        for info in self._iterate("list", path, entries or ()):
            if _paths.basename(info.path).startswith(_paths.RESERVED_PREFIXES):
                continue
            try:
                clean = _paths.normalize(info.path)
            except InvalidPath as exc:
                # A name the core refuses (a backslash, a control character, '..' from a
                # hostile server) is skipped: it could never be read back safely anyway.
                log.warning("list %s: skipping %s", self.where(path), exc)
                continue
            if path and not clean.startswith(path + "/"):
                raise BackendError(
                    f"list {self.where(path)}: the plugin returned {info.path!r}, outside {path!r}"
                )
            yield info if clean == info.path else _with_path(info, clean)

    def upload(
        self, path: str, local_file: str, progress: Callable[[int], None], digest: str | None = None
    ) -> None:
        """Write a local file to ``path`` atomically (``digest``: its SHA-256, to record)."""
        self._call("upload", path, local_file=local_file, progress=progress, digest=digest)

    def write(self, path: str, chunks: Iterable[bytes], digest: str | None = None) -> None:
        """Write an object from a stream of chunks atomically (``digest``: its SHA-256 if known)."""
        self._call("write", path, chunks=chunks, digest=digest)

    def download(self, path: str, local_file: str, progress: Callable[[int], None]) -> str | None:
        """Write the object at ``path`` into ``local_file``; the SHA-256 the storage sent, if any."""
        found = self._call("download", path, local_file=local_file, progress=progress)
        return found if isinstance(found, str) and found else None

    def read(self, path: str, offset: int = 0, length: int | None = None) -> Iterator[bytes]:
        """Stream the object's bytes from ``offset`` (``length`` None: to the end)."""
        if (offset or length is not None) and not self.capabilities.ranged_read:
            return self._slice(self.read(path), offset, length)
        chunks = self._call("read", path, offset=offset, length=length)
        return self._iterate("read", path, chunks)

    @staticmethod
    def _slice(chunks: Iterator[bytes], offset: int, length: int | None) -> Iterator[bytes]:
        # A backend without ranged reads streams from the start; skip to the range here.
        remaining = length
        try:
            for chunk in chunks:
                if offset >= len(chunk):
                    offset -= len(chunk)
                    continue
                piece = memoryview(chunk)[offset:]
                offset = 0
                if remaining is not None:
                    piece = piece[:remaining]
                    remaining -= len(piece)
                if piece:
                    yield bytes(piece)
                if remaining == 0:
                    return
        finally:
            close = getattr(chunks, "close", None)
            if close is not None:
                close()

    def delete(self, path: str) -> None:
        """Delete the file or tree at ``path``; NotFound when nothing is there."""
        self._call("delete", path)

    # -- batches of small files ----------------------------------------------------------

    def upload_batch(self, path: str, files: Iterable[tuple[str, bytes]]) -> None:
        """Write small files (names relative to ``path``) in one exchange."""
        self.require("batch")
        self._call("upload_batch", path, files=files)

    def download_batch(self, path: str, names: Sequence[str]) -> Iterator[tuple[str, bytes]]:
        """The bytes of the files ``names`` (relative to ``path``), each exactly once."""
        self.require("batch")
        wanted, seen = set(names), set()
        found = self._call("download_batch", path, names=names)
        for name, data in self._iterate("download_batch", path, found):
            if name not in wanted or name in seen:
                raise BackendError(
                    f"download_batch {self.where(path)}: the plugin returned {name!r}, "
                    + ("twice" if name in seen else "which was not asked for")
                )
            seen.add(name)
            yield name, data
        if len(seen) != len(wanted):
            missing = sorted(wanted - seen)
            raise BackendError(
                f"download_batch {self.where(path)}: {len(missing)} files missing, e.g. {missing[0]!r}"
            )

    # -- multipart ------------------------------------------------------------------------

    def create_multipart(self, path: str, size: int | None = None, part_size: int = 0) -> str:
        """Start a multipart upload; returns its upload id.

        NotSupported means this upload cannot go in parts after all (a proxy's
        destination refused): callers fall back to a single upload.
        """
        self.require("multipart")
        upload_id = self._call("create_multipart", path, size=size, part_size=part_size)
        if not isinstance(upload_id, str):
            raise BackendError(f"create_multipart {self.where(path)}: the plugin returned {upload_id!r}")
        return upload_id

    def upload_part(
        self, path: str, upload_id: str, part_number: int, data: bytes, crc32: int | None = None
    ) -> str:
        """Upload one part (``crc32``: its ``zlib.crc32``, if known); returns its ETag."""
        etag = self._call(
            "upload_part", path, upload_id=upload_id, part_number=part_number, data=data, crc32=crc32
        )
        if not isinstance(etag, str):
            raise BackendError(f"upload_part {self.where(path)}: the plugin returned {etag!r}")
        return etag

    def complete_multipart(
        self, path: str, upload_id: str, parts: Sequence[Part], digest: str | None = None
    ) -> None:
        """Assemble the parts into the object (``digest``: the whole content's SHA-256)."""
        ordered = sorted(parts, key=lambda p: p.part_number)
        self._call("complete_multipart", path, upload_id=upload_id, parts=ordered, digest=digest)

    def abort_multipart(self, path: str, upload_id: str) -> None:
        """Abandon a multipart upload."""
        self._call("abort_multipart", path, upload_id=upload_id)

    @property
    def lists_parts(self) -> bool:
        """Whether the plugin lists an incomplete upload's parts (so uploads can resume)."""
        return (
            self.multipart_limits is not None
            and self.capabilities.list_parts
            and self.handle.implements("list_parts")
        )

    def list_parts(self, path: str, upload_id: str) -> Sequence[Part]:
        """The parts an incomplete upload holds, by part number; NotFound when the upload is gone."""
        if not self.lists_parts:
            raise NotSupported(f"the '{self.name}' backend cannot list the parts of an upload")
        found = self._call("list_parts", path, upload_id=upload_id)
        parts = []
        for part in found or ():
            if not isinstance(part, Part):
                raise BackendError(f"list_parts {self.where(path)}: the plugin returned {part!r}")
            parts.append(part)
        return sorted(parts, key=lambda p: p.part_number)

    def list_multipart_uploads(self, path: str) -> Iterator[PendingUpload]:
        """Incomplete multipart uploads below ``path``."""
        self.require("list_multipart_uploads")
        return self._iterate("list_multipart_uploads", path, self._call("list_multipart_uploads", path))

    # -- presign and copy -----------------------------------------------------------------

    def presign(
        self,
        path: str,
        method: str = "GET",
        expires_in: int = 300,
        upload_id: str | None = None,
        part_number: int | None = None,
    ) -> PresignedUrl:
        """A URL granting one GET or PUT of ``path`` (or of one part) without credentials."""
        self.require("presign")
        if method not in ("GET", "PUT"):
            raise ValueError(f"presign method must be GET or PUT, not {method!r}")
        return self._call(  # type: ignore[no-any-return]
            "presign",
            path,
            method=method,
            expires_in=expires_in,
            upload_id=upload_id,
            part_number=part_number,
        )

    def copy(self, path: str, dst: Backend, dst_path: str) -> None:
        """Server-side copy to ``dst_path`` of ``dst`` (which must be the same plugin)."""
        self.require("server_side_copy")
        if dst.handle is not self.handle:
            raise NotSupported(f"server-side copy from '{self.name}' to '{dst.name}'")
        self._call("copy", path, dst_root=dst.root, dst_path=dst_path)


def _with_path(info: FileInfo, path: str) -> FileInfo:
    return dataclasses.replace(info, path=path)
