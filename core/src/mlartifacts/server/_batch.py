"""Beyond MLflow: many small files in one request each way, as tar streams.

``POST /mlflow-artifacts/batch/upload/<dir>`` takes a tar of regular files and
writes each below ``<dir>`` (each atomically, as a PUT would; directory entries
are skipped, links refused); it answers
``{"files": n, "bytes": b}``. ``POST /mlflow-artifacts/batch/download/<dir>`` with
``{"paths": [...]}`` answers a tar of those files. Our client uses them when
``/server-info`` lists ``batch_transfers``; MLflow's client never sees them.
"""

from __future__ import annotations

import io
import tarfile
from typing import IO, Any, Iterator

import anyio.to_thread
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from .._tar import BatchFormatError, read_members, reader, write_members
from .._types import FileInfo
from ..errors import IntegrityError
from ..store import ArtifactStore
from ..transfer._digest import sha256_hex, valid_hex
from ._errors import ApiError
from ._json import read_json
from ._listings import Listings
from ._paths import member_path, request_path
from ._streams import IncompleteBody, RequestBody, refuse_transfer_codings

__all__ = ["MAX_BATCH_NAMES", "BatchApi"]

#: Most files one batch download may ask for.
MAX_BATCH_NAMES = 1000
_TAR = "application/x-tar"
_BLOCK = 1024 * 1024
_FORM_TYPES = frozenset({"text/plain", "application/x-www-form-urlencoded", "multipart/form-data"})
# Where the destination moves batches itself (S3: many PUTs in flight), small members are
# handed over in groups of at most this many files and bytes, held in memory meanwhile.
_GROUP_FILES = 100
_GROUP_BYTES = 32 * 1024 * 1024
_GROUP_MEMBER = 1024 * 1024  # larger members are streamed, one write (or read) each
#: A member read through a group: (name, path, bytes, their SHA-256 or None if not as listed).
_Member = tuple[str, str, bytes, "str | None"]


class BatchApi:
    """The batch routes, over one store (the ``--artifacts-destination``)."""

    def __init__(self, store: ArtifactStore, listings: Listings | None = None) -> None:
        self.store = store
        self.listings = listings or Listings()

    async def upload(self, request: Request) -> Response:
        """Write every member of the tar body below the route's directory."""
        directory = request_path(request.path_params["path"])
        refuse_transfer_codings(request)
        kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if kind in _FORM_TYPES:
            # The types an HTML form or a "simple" cross-site request can send without asking:
            # a tar never comes that way, so refusing them leaves no CSRF route to a write.
            raise ApiError(
                "UNSUPPORTED_MEDIA_TYPE", f"batch upload takes {_TAR} (or no Content-Type), not {kind}"
            )
        length = request.headers.get("content-length")
        body = RequestBody(request, int(length) if length and length.isdigit() else None)

        grouped = self.store.capabilities.batch

        def store_members() -> tuple[int, int]:
            count = total = 0
            group = _Group(self.store)
            for name, size, data, announced in read_members(reader(body)):
                path = member_path(name, directory)
                digest = valid_hex(announced) if announced is not None else None
                if announced is not None and digest is None:
                    raise BatchFormatError(f"member {name!r}: {announced!r} is not a SHA-256")
                if grouped and size <= _GROUP_MEMBER:
                    blob = data.read()
                    if len(blob) != size:
                        raise BatchFormatError(f"member {name!r} has {len(blob)} bytes, its header {size}")
                    group.add(name, path, blob, digest)
                else:
                    try:
                        self.store.write(path, _blocks(data), size, None, digest)
                    except IntegrityError as exc:
                        if digest is None:
                            raise
                        raise BatchFormatError(f"member {name!r} does not match its SHA-256: {exc}") from exc
                count += 1
                total += size
            group.flush()
            return count, total

        try:
            count, total = await body.run(store_members)
        except ClientDisconnect:
            return Response(status_code=400)  # the member being written was abandoned
        except (BatchFormatError, tarfile.TarError, IncompleteBody) as exc:
            raise ApiError("INVALID_PARAMETER_VALUE", f"batch upload to '{directory}': {exc}") from exc
        finally:
            self.listings.forget(directory, tree=True)  # some members may be written, whatever happened
        return JSONResponse({"files": count, "bytes": total})

    async def download(self, request: Request) -> Response:
        """A tar of the files the JSON body names (``{"paths": [...]}``, relative to the directory).

        Where the destination moves batches (S3: many GETs in flight), the members
        listed a moment ago as small are read through it in groups, each member's
        SHA-256 taken from the bytes read; the others are stat'ed (a missing one is a
        404 before any byte) and streamed one by one, with the digest the
        destination recorded.
        """
        directory = request_path(request.path_params["path"])
        names = _names(await read_json(request))
        targets = [member_path(name, directory) for name in names]
        grouped: list[tuple[str, str, FileInfo]] = []
        single: list[tuple[str, str]] = []
        for name, path in zip(names, targets, strict=True):
            listed = self.listings.file(path) if self.store.capabilities.batch else None
            if listed is not None and (listed.file_size or 0) <= _GROUP_MEMBER:
                grouped.append((name, path, listed))
            else:
                single.append((name, path))
        groups = _split(grouped)

        def prepare() -> tuple[list[FileInfo], list[_Member]]:
            # A missing member of the first group (often the whole batch) is a 404 before any byte.
            infos = [self.store.stat(path) for _, path in single]
            return infos, self._read_group(groups[0]) if groups else []

        infos, first = await anyio.to_thread.run_sync(prepare)
        for (_, path), info in zip(single, infos, strict=True):
            if info.is_dir:
                raise ApiError("INVALID_PARAMETER_VALUE", f"'{path}' is a directory, not a file")

        def members() -> Iterator[tuple[str, int, IO[bytes], str | None]]:
            late: list[tuple[str, str]] = []
            for index in range(len(groups)):
                read = first if index == 0 else self._read_group(groups[index])
                for name, path, data, digest in read:
                    if digest is None:  # not what was listed: sent with the stored digest below
                        late.append((name, path))
                    else:
                        yield name, len(data), io.BytesIO(data), digest
            for (name, path), info in zip(single, infos, strict=True):
                yield name, info.file_size or 0, reader(self.store.read(path)), info.digest
            for name, path in late:
                info = self.store.stat(path)
                yield name, info.file_size or 0, reader(self.store.read(path)), info.digest

        return StreamingResponse(write_members(members()), media_type=_TAR)

    def _read_group(self, group: list[tuple[str, str, FileInfo]]) -> list[_Member]:
        """Read a group through the destination's batch; a member's digest is that of its bytes.

        The digest is None where the bytes do not match the listed size or the digest
        recorded with the file (known from the listing, or checked by the destination's
        batch itself, as S3 does): the member is sent again, streamed with the digest the
        destination records, which the client checks.
        """
        data: dict[str, bytes] = {}
        try:
            for path, blob in self.store.backend.download_batch("", [path for _, path, _ in group]):
                data[path] = blob
        except IntegrityError:
            pass  # a member that differs from its recorded digest goes the stored-digest way below
        read: list[_Member] = []
        for name, path, listed in group:
            blob = data.get(path, b"")
            digest: str | None = sha256_hex(blob)
            if (
                path not in data
                or len(blob) != listed.file_size
                or (listed.digest is not None and listed.digest != digest)
            ):
                digest = None
            read.append((name, path, blob, digest))
        return read


class _Group:
    """Small members on their way to a destination that writes batches (each file atomically)."""

    def __init__(self, store: ArtifactStore) -> None:
        self._store = store
        self._files: list[tuple[str, bytes]] = []
        self._held = 0

    def add(self, name: str, path: str, data: bytes, digest: str | None) -> None:
        # Checked here, before anything of it is written: a member that does not match
        # its announced SHA-256 is refused, as a streamed write would refuse it.
        if digest is not None and sha256_hex(data) != digest:
            raise BatchFormatError(
                f"member {name!r} does not match its SHA-256: received {sha256_hex(data)}, announced {digest}"
            )
        self._files.append((path, data))
        self._held += len(data)
        if len(self._files) >= _GROUP_FILES or self._held >= _GROUP_BYTES:
            self.flush()

    def flush(self) -> None:
        if self._files:
            files, self._files, self._held = self._files, [], 0
            self._store.backend.upload_batch("", files)


def _split(members: list[tuple[str, str, FileInfo]]) -> list[list[tuple[str, str, FileInfo]]]:
    """Members in groups of at most ``_GROUP_FILES`` files and ``_GROUP_BYTES`` bytes."""
    groups: list[list[tuple[str, str, FileInfo]]] = []
    held = _GROUP_BYTES
    for member in members:
        size = member[2].file_size or 0
        if not groups or len(groups[-1]) >= _GROUP_FILES or held + size > _GROUP_BYTES:
            groups.append([])
            held = 0
        groups[-1].append(member)
        held += size
    return groups


def _blocks(data: IO[bytes]) -> Iterator[bytes]:
    while block := data.read(_BLOCK):
        yield block


def _names(body: Any) -> list[str]:
    names = body.get("paths") if isinstance(body, dict) else None
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise ApiError("INVALID_PARAMETER_VALUE", 'the body must be {"paths": [<relative path>, ...]}')
    if len(names) > MAX_BATCH_NAMES:
        raise ApiError(
            "INVALID_PARAMETER_VALUE", f"at most {MAX_BATCH_NAMES} paths per batch, got {len(names)}"
        )
    if len(set(names)) != len(names):
        raise ApiError("INVALID_PARAMETER_VALUE", "a path appears twice in the batch")
    return names
