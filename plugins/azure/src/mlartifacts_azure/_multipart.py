"""Staged-block uploads (the engine's multipart steps) and SAS-signed URLs.

A multipart upload here is a set of staged blocks, committed as one block list:
``create_multipart`` only draws a random upload id (Azure keeps no upload
object); part ``n`` is staged under a block id derived from (upload id, n), all
ids the same length as the service requires; ``complete_multipart`` commits the
list in part order. Until that commit nothing is visible, and a failed upload
commits nothing. Azure cannot delete staged blocks on their own: abort commits
nothing, and the service discards uncommitted blocks after 7 days (or at the
blob's next commit).

Proxied uploads (the artifacts service's ``/mpu``) send each part straight to a
SAS-signed ``comp=block&blockid=...`` URL; completion reads the block id back
from each part's URL, as MLflow's server does, so MLflow's client, which sends
no upload id for Azure, completes its uploads too.
"""

from __future__ import annotations

import base64
import datetime as dt
import math
import posixpath
import secrets
import threading
from typing import TYPE_CHECKING, Any, Sequence
from urllib.parse import parse_qs, quote, unquote, urlsplit

from mlartifacts import MultipartLimits, Part, PresignedUrl, hookimpl
from mlartifacts.errors import InvalidPath, NotSupported

from ._errors import translated
from ._objects import DIGEST_KEY
from ._root import AzureRoot, content_type

if TYPE_CHECKING:
    from azure.storage.blob import UserDelegationKey

__all__ = [
    "LIMITS",
    "abort_multipart",
    "block_id",
    "wire_block_id",
    "complete_multipart",
    "create_multipart",
    "list_parts",
    "presign",
    "upload_part",
]

MiB = 1024 * 1024
#: Azure's block blob limits: at most 50,000 blocks of up to 4000 MiB. There is no
#: minimum; 1 MiB keeps the request count sensible for the engine's small parts. The
#: service discards uncommitted blocks after 7 days: a resume journal older than 6
#: (a day's margin for the resumed upload itself) starts over.
LIMITS = MultipartLimits(1 * MiB, 4000 * MiB, 50_000, retention=6 * 86400.0)
_ID_PREFIX = "mla1"
_UPLOAD_ID_LENGTH = 32  # hex characters


def block_id(upload_id: str, part_number: int) -> str:
    """The block id of a part, as the SDK takes it (it sends it base64-encoded).

    The same length for every part of every upload, as the service requires of
    a blob's blocks, and within its 64 bytes.
    """
    if not 1 <= part_number <= LIMITS.max_parts:
        raise ValueError(f"part numbers run from 1 to {LIMITS.max_parts}, got {part_number}")
    if len(upload_id) != _UPLOAD_ID_LENGTH or not all(c in "0123456789abcdef" for c in upload_id):
        raise ValueError(f"not an upload id of this backend: {upload_id!r}")
    return f"{_ID_PREFIX}-{upload_id}-{part_number:05d}"


def wire_block_id(block: str) -> str:
    """The block id as a ``blockid`` query parameter carries it: base64 (still to be URL-quoted)."""
    return base64.b64encode(block.encode()).decode()


@hookimpl
def create_multipart(root: AzureRoot, path: str) -> str:
    # Azure keeps no upload object: the id only names this upload's blocks.
    return secrets.token_hex(_UPLOAD_ID_LENGTH // 2)


@hookimpl
def upload_part(root: AzureRoot, path: str, upload_id: str, part_number: int, data: bytes) -> str:
    name = root.name(path)
    block = block_id(upload_id, part_number)
    with translated(root, name):
        # validate_content: the block goes with its Content-MD5, which Azure checks (a block
        # changed in flight is refused: Md5Mismatch).
        root.blob(name).stage_block(
            block, data, length=len(data), validate_content=True, timeout=_timeout(root)
        )
    return block


@hookimpl
def complete_multipart(
    root: AzureRoot, path: str, upload_id: str, parts: Sequence[Part], digest: str | None
) -> None:
    from azure.storage.blob import BlobBlock, ContentSettings

    name = root.name(path)
    blocks = [BlobBlock(_part_block_id(root, name, upload_id, p)) for p in parts]
    with translated(root, name):
        root.blob(name).commit_block_list(
            blocks,
            content_settings=ContentSettings(content_type=content_type(name)),
            metadata={DIGEST_KEY: digest} if digest is not None else None,  # set with the commit
            timeout=_timeout(root),
        )


def _part_block_id(root: AzureRoot, name: str, upload_id: str, part: Part) -> str:
    if part.url:  # a proxied part: its block id is in the URL it was sent to
        url = urlsplit(part.url)
        blob_url = urlsplit(root.blob(name).url)
        if unquote(url.path) != unquote(blob_url.path):
            raise InvalidPath(f"part {part.part_number} was sent to another blob than {root.uri(name)}")
        found = parse_qs(url.query).get("blockid")
        if not found:
            raise InvalidPath(f"part {part.part_number}: its URL carries no blockid")
        try:  # the SDK takes block ids decoded, and encodes them itself
            return base64.b64decode(found[0], validate=True).decode()
        except ValueError:
            raise InvalidPath(f"part {part.part_number}: its URL's blockid is not base64") from None
    if not upload_id:
        raise InvalidPath(f"part {part.part_number}: no upload id and no part URL to take its block id from")
    return block_id(upload_id, part.part_number)


@hookimpl
def list_parts(root: AzureRoot, path: str, upload_id: str) -> list[Part]:
    # The blob's uncommitted blocks named for this upload. A blob that does not exist
    # at all (not even uncommitted blocks) is NotFound; one whose blocks were dropped
    # (7 days, or another commit of the blob) lists none, and every part is sent again.
    name = root.name(path)
    prefix = f"{_ID_PREFIX}-{upload_id}-"
    with translated(root, name):
        _, uncommitted = root.blob(name).get_block_list("uncommitted", timeout=_timeout(root))
    parts = []
    for block in uncommitted:
        block_name = block.id if isinstance(block.id, str) else str(block.id)
        number = block_name[len(prefix) :]
        if block_name.startswith(prefix) and number.isdigit():
            parts.append(Part(int(number), block_name, size=block.size))
    return parts


@hookimpl
def abort_multipart(root: AzureRoot, path: str, upload_id: str) -> None:
    # Nothing to free: staged blocks cannot be deleted alone, the service discards
    # them after 7 days (or at the blob's next commit), and none is ever visible.
    return None


def _timeout(root: AzureRoot) -> int | None:
    return math.ceil(root.config.timeout) if root.config.timeout else None


# -- SAS ------------------------------------------------------------------------------------

_keys_lock = threading.Lock()
_delegation_keys: dict[int, tuple[UserDelegationKey, dt.datetime]] = {}
_KEY_LIFETIME = dt.timedelta(hours=6)


def _delegation_key(root: AzureRoot, expiry: dt.datetime) -> UserDelegationKey:
    """A user-delegation key valid until ``expiry`` or later, reused while it lasts."""
    client = root.service.client
    with _keys_lock:
        cached = _delegation_keys.get(id(client))
        if cached is not None and cached[1] >= expiry:
            return cached[0]
        start = dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=5)  # clock skew
        until = min(max(expiry, start + _KEY_LIFETIME), start + dt.timedelta(days=7))
        with translated(root, None):
            key = client.get_user_delegation_key(start, until)
        _delegation_keys[id(client)] = (key, until)
        return key


def sas_token(root: AzureRoot, name: str, permission: str, expires_in: int, **extra: Any) -> str:
    """A blob SAS for ``name``: from the account key, or a user-delegation key for token credentials."""
    from azure.core.credentials import AzureNamedKeyCredential
    from azure.storage.blob import generate_blob_sas

    service = root.service
    credential = service.target.credential
    now = dt.datetime.now(dt.timezone.utc)
    expiry = now + dt.timedelta(seconds=expires_in)
    signing: dict[str, Any]
    if isinstance(credential, AzureNamedKeyCredential):
        signing = {"account_key": credential.named_key.key}
    elif hasattr(credential, "get_token"):
        signing = {"user_delegation_key": _delegation_key(root, expiry)}
    else:
        raise NotSupported(
            f"cannot sign URLs for {root.uri(name)}: the connection string holds a SAS, not an account key"
        )
    return generate_blob_sas(
        service.target.account_name,
        root.container,
        name,
        permission=permission,
        expiry=expiry,
        start=now - dt.timedelta(minutes=5),  # clock skew between us and the service
        **signing,
        **extra,
    )


@hookimpl
def presign(
    root: AzureRoot,
    path: str,
    method: str,
    expires_in: int,
    upload_id: str | None,
    part_number: int | None,
) -> PresignedUrl:
    name = root.name(path)
    if (upload_id is None) != (part_number is None):
        raise ValueError("presign: a multipart part needs both upload_id and part_number")
    blob_url = root.blob(name).url
    if method == "GET":
        if upload_id is not None:
            raise ValueError("presign: multipart parts are uploaded with PUT, not GET")
        token = sas_token(
            root, name, "r", expires_in, content_disposition=attachment(posixpath.basename(name))
        )
        return PresignedUrl(f"{blob_url}?{token}", {}, expires_in)
    if upload_id is not None and part_number is not None:
        block = quote(wire_block_id(block_id(upload_id, part_number)), safe="")
        token = sas_token(root, name, "w", expires_in)
        return PresignedUrl(f"{blob_url}?comp=block&blockid={block}&{token}", {}, expires_in)
    token = sas_token(root, name, "cw", expires_in)
    headers = {"x-ms-blob-type": "BlockBlob"}
    guessed = content_type(name)
    if guessed:
        headers["x-ms-blob-content-type"] = guessed
    return PresignedUrl(f"{blob_url}?{token}", headers, expires_in)


def attachment(filename: str) -> str:
    """A Content-Disposition that saves the download as ``filename`` (RFC 6266)."""
    if filename.isascii() and filename.isprintable() and '"' not in filename and "\\" not in filename:
        return f'attachment; filename="{filename}"'
    fallback = "".join(c if c.isascii() and c.isprintable() and c not in '"\\' else "_" for c in filename)
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"
