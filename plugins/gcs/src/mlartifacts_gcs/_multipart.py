"""Parallel composite uploads (GCS's multipart), their listing for gc, and V4 signed URLs.

Each part is uploaded as a temporary object next to the target,
``<dir>/.mlartifacts-partial-<name>.<upload_id>.<part>`` (the core hides that
prefix from every listing), then ``compose`` joins them, 32 sources per call, in a
tree when there are more, and the temporaries are deleted. The upload id is a
random token: creating an upload costs no request, and the temporaries' names are
all the state there is, so an upload abandoned by a crash is found by name
(``list_multipart_uploads``) and swept by ``mlartifacts gc``.

Costs, stated in the README: composite objects carry a CRC32C but no MD5, and
temporaries deleted soon after they were written incur early-deletion fees in
Nearline, Coldline and Archive buckets.
"""

from __future__ import annotations

import datetime
import logging
import posixpath
import uuid
from typing import TYPE_CHECKING, Iterator, Sequence

from mlartifacts import MultipartLimits, Part, PendingUpload, PresignedUrl, hookimpl
from mlartifacts.errors import ArtifactError, InvalidPath, NotFound, NotSupported
from mlartifacts.paths import TEMP_PREFIX

from ._errors import translated
from ._objects import iter_blobs, put_media
from ._root import GCSRoot, content_type

if TYPE_CHECKING:
    from google.cloud.storage import Blob  # type: ignore[import-untyped]  # no py.typed

__all__ = [
    "LIMITS",
    "abort_multipart",
    "can_sign",
    "complete_multipart",
    "create_multipart",
    "list_multipart_uploads",
    "list_parts",
    "presign",
    "upload_part",
]

log = logging.getLogger("mlartifacts.gcs")

KiB, MiB, GiB = 1024, 1024**2, 1024**3
#: Sources one compose request takes.
COMPOSE_FANIN = 32
#: GCS sets no minimum part size (256 KiB keeps a part worth its request) and no part
#: count; 1,024 parts of up to 5 GiB reach GCS's 5 TiB object limit, and two levels
#: of compose (32 x 32) join them. Parts are held in memory while they are sent,
#: which the engine's part size, not this maximum, bounds.
LIMITS = MultipartLimits(256 * KiB, 5 * GiB, COMPOSE_FANIN * COMPOSE_FANIN)
_UPLOAD_ID_LENGTH = 32  # uuid4().hex


def _base(root: GCSRoot, key: str, upload_id: str) -> str:
    """The common start of every temporary's name for this upload."""
    if len(upload_id) != _UPLOAD_ID_LENGTH or not all(c in "0123456789abcdef" for c in upload_id):
        raise NotFound(f"{root.uri(key)}: no such multipart upload {upload_id!r}")
    directory, name = posixpath.split(key)
    return posixpath.join(directory, f"{TEMP_PREFIX}{name}.{upload_id}.")


def part_name(root: GCSRoot, key: str, upload_id: str, part_number: int) -> str:
    """The temporary object holding part ``part_number`` of an upload."""
    if not 1 <= part_number <= LIMITS.max_parts:
        raise InvalidPath(f"{root.uri(key)}: part numbers go from 1 to {LIMITS.max_parts}, not {part_number}")
    return f"{_base(root, key, upload_id)}{part_number:05d}"


@hookimpl
def create_multipart(root: GCSRoot, path: str) -> str:
    if not path:
        raise InvalidPath(f"{root.uri()}: a multipart upload needs an object name")
    return uuid.uuid4().hex


@hookimpl
def upload_part(root: GCSRoot, path: str, upload_id: str, part_number: int, data: bytes) -> str:
    name = part_name(root, root.key(path), upload_id, part_number)
    # One media upload: the part's bytes are sent as they are, without the copy a
    # multipart/related body would make (parts are the engine's memory budget).
    stored = put_media(root, name, data, "application/octet-stream")
    return str(stored["generation"])  # compose then takes exactly the generation that was sent


@hookimpl
def complete_multipart(root: GCSRoot, path: str, upload_id: str, parts: Sequence[Part]) -> None:
    key = root.key(path)
    numbers = [p.part_number for p in parts]
    if not numbers or numbers != list(range(1, len(numbers) + 1)):
        raise InvalidPath(f"{root.uri(key)}: parts must be numbered 1 to {len(numbers)}, got {numbers[:10]}")
    bucket = root.handle
    sources = []
    for part in parts:
        # Our parts' ETags are generations; a proxied client echoes the XML API's ETag
        # (an MD5), which names no generation: the part's current one is composed then.
        generation = int(part.etag) if part.etag.isdigit() else None
        sources.append(bucket.blob(part_name(root, key, upload_id, part.part_number), generation=generation))
    base = _base(root, key, upload_id)
    # On failure the temporaries stay: the engine retries this call (intermediates have
    # fixed names and are overwritten), then aborts, which deletes them.
    level = 0
    while len(sources) > COMPOSE_FANIN:
        level += 1
        groups = [sources[i : i + COMPOSE_FANIN] for i in range(0, len(sources), COMPOSE_FANIN)]
        sources = [_compose(root, f"{base}c{level}-{n:04d}", group) for n, group in enumerate(groups)]
    _compose(root, key, sources, content_type(key))
    try:
        _delete_temporaries(root, key, upload_id)
    except ArtifactError as exc:
        # The object is complete: a failed cleanup must not fail the upload (and a retry
        # of this call would find parts missing). gc finds what is left by its name.
        log.warning("%s: uploaded, but its temporary parts could not all be deleted: %s", root.uri(key), exc)


def _compose(root: GCSRoot, name: str, sources: list[Blob], ctype: str = "application/octet-stream") -> Blob:
    target = root.handle.blob(name)
    target.content_type = ctype
    with translated(root, name):
        target.compose(sources, timeout=root.config.timeout, retry=None)
    return target


def _delete_temporaries(root: GCSRoot, key: str, upload_id: str) -> int:
    from google.api_core.exceptions import NotFound as Missing

    base = _base(root, key, upload_id)
    deleted = 0
    bucket = root.handle
    for blob in iter_blobs(root, base, recursive=True):
        if isinstance(blob, str):
            continue
        with translated(root, blob.name):
            try:
                bucket.delete_blob(blob.name, timeout=root.config.timeout, retry=None)
                deleted += 1
            except Missing:
                pass  # gone already (a concurrent abort)
    return deleted


@hookimpl
def abort_multipart(root: GCSRoot, path: str, upload_id: str) -> None:
    # Idempotent: aborting an upload with no temporaries left deletes nothing.
    _delete_temporaries(root, root.key(path), upload_id)


@hookimpl
def list_parts(root: GCSRoot, path: str, upload_id: str) -> list[Part]:
    # The upload's part temporaries (not compose's intermediates, "c<level>-<n>"); their
    # generations are the ETags upload_part returned. An upload leaves no other trace:
    # one with no temporaries left lists nothing, and every part is sent again.
    base = _base(root, root.key(path), upload_id)
    parts = []
    for blob in iter_blobs(root, base, recursive=True):
        if isinstance(blob, str):
            continue
        number = blob.name[len(base) :]
        if len(number) == 5 and number.isdigit():
            parts.append(Part(int(number), str(blob.generation), size=blob.size))
    return parts


@hookimpl
def list_multipart_uploads(root: GCSRoot, path: str) -> Iterator[PendingUpload]:
    key = root.key(path)
    prefixes = [f"{key}/" if key else ""]
    if path:  # the temporaries of an upload to "path" itself live next to it
        directory, name = posixpath.split(key)
        prefixes.append(posixpath.join(directory, f"{TEMP_PREFIX}{name}."))
    return _pending(root, prefixes)


def _pending(root: GCSRoot, prefixes: list[str]) -> Iterator[PendingUpload]:
    found: dict[tuple[str, str], float | None] = {}
    for prefix in prefixes:
        for blob in iter_blobs(root, prefix, recursive=True):
            if isinstance(blob, str):
                continue
            parsed = _parse(blob.name)
            if parsed is None:
                continue
            created = blob.time_created.timestamp() if blob.time_created is not None else None
            earliest = found.get(parsed, created)
            both = created is not None and earliest is not None
            found[parsed] = min(created, earliest) if both else created  # type: ignore[type-var]
    for (name, upload_id), initiated in sorted(found.items()):
        yield PendingUpload(root.rel(name), upload_id, initiated)


def _parse(name: str) -> tuple[str, str] | None:
    """(target object name, upload id) of a temporary's name, or None for any other object."""
    directory, base = posixpath.split(name)
    if not base.startswith(TEMP_PREFIX):
        return None
    pieces = base[len(TEMP_PREFIX) :].rsplit(".", 2)
    if len(pieces) != 3 or len(pieces[1]) != _UPLOAD_ID_LENGTH or not pieces[0]:
        return None
    return posixpath.join(directory, pieces[0]), pieces[1]


def can_sign(root: GCSRoot) -> bool:
    """Whether this root's credentials can sign V4 URLs (service-account keys can)."""
    from google.auth.credentials import Signing

    client = root.client
    return not client.anonymous and isinstance(client.credentials, Signing)


@hookimpl
def presign(
    root: GCSRoot,
    path: str,
    method: str,
    expires_in: int,
    upload_id: str | None,
    part_number: int | None,
) -> PresignedUrl:
    key = root.key(path)
    if (upload_id is None) != (part_number is None):
        raise ValueError("presign: a multipart part needs both upload_id and part_number")
    credentials = root.client.credentials
    if not can_sign(root):
        kind = "anonymous access" if root.client.anonymous else f"{type(credentials).__name__} credentials"
        raise NotSupported(
            f"presigned URLs for {root.uri(key)}: {kind} cannot sign V4 URLs; use a service-account "
            "key (GOOGLE_APPLICATION_CREDENTIALS)"
        )
    name = key
    extra: dict[str, str] = {}
    if method == "GET":
        if upload_id is not None:
            raise ValueError("presign: multipart parts are uploaded with PUT, not GET")
        extra["response_disposition"] = _attachment(posixpath.basename(key))
    elif upload_id is not None:
        assert part_number is not None
        name = part_name(root, key, upload_id, part_number)
    blob = root.handle.blob(name)
    with translated(root, name):
        url = blob.generate_signed_url(
            version="v4",
            expiration=datetime.timedelta(seconds=expires_in),
            method=method,
            api_access_endpoint=root.client.endpoint,
            credentials=credentials,
            **extra,
        )
    return PresignedUrl(url, {}, expires_in)


def _attachment(filename: str) -> str:
    """A Content-Disposition that saves the download as ``filename`` (RFC 6266)."""
    from urllib.parse import quote

    if filename.isascii() and filename.isprintable() and '"' not in filename and "\\" not in filename:
        return f'attachment; filename="{filename}"'
    fallback = "".join(c if c.isascii() and c.isprintable() and c not in '"\\' else "_" for c in filename)
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"
