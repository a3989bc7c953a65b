"""Multipart uploads (the four steps and the listing of incomplete ones) and presigned URLs."""

from __future__ import annotations

import logging
import posixpath
from typing import Any, Iterator, Sequence
from urllib.parse import quote

from mlartifacts import MultipartLimits, Part, PendingUpload, PresignedUrl, hookimpl
from mlartifacts.transfer import to_base64

from ._client import signed_headers
from ._errors import error_code, translate, translated
from ._root import DIGEST_KEY, S3Root, put_params

__all__ = [
    "LIMITS",
    "abort_multipart",
    "complete_multipart",
    "create_multipart",
    "list_multipart_uploads",
    "list_parts",
    "presign",
    "upload_part",
]

log = logging.getLogger("mlartifacts.s3")

MiB = 1024 * 1024
#: S3's multipart limits: parts of 5 MiB (all but the last) to 5 GiB, at most 10,000 of them.
LIMITS = MultipartLimits(5 * MiB, 5 * 1024 * MiB, 10_000)


@hookimpl
def create_multipart(root: S3Root, path: str) -> str:
    key = root.key(path)
    with translated(root, key):
        response = root.client.create_multipart_upload(Bucket=root.bucket, Key=key, **put_params(key))
    return response["UploadId"]


@hookimpl
def upload_part(
    root: S3Root, path: str, upload_id: str, part_number: int, data: bytes, crc32: int | None
) -> str:
    key = root.key(path)
    # x-amz-checksum-crc32 of the part: S3 refuses a part that arrives different (BadDigest),
    # whatever the client's checksum defaults. The engine's (computed for its resume journal)
    # when it has one, else botocore computes it from data: one pass over the part either way.
    checksum: dict[str, Any] = (
        {"ChecksumAlgorithm": "CRC32"}
        if crc32 is None
        else {"ChecksumAlgorithm": "CRC32", "ChecksumCRC32": to_base64(f"{crc32:08x}")}
    )
    with translated(root, key):
        response = root.client.upload_part(
            Bucket=root.bucket,
            Key=key,
            UploadId=upload_id,
            PartNumber=part_number,
            Body=data,
            **checksum,
        )
    return response["ETag"]


@hookimpl
def complete_multipart(
    root: S3Root, path: str, upload_id: str, parts: Sequence[Part], digest: str | None
) -> None:
    key = root.key(path)
    with translated(root, key):
        root.client.complete_multipart_upload(
            Bucket=root.bucket,
            Key=key,
            UploadId=upload_id,
            MultipartUpload={"Parts": [{"PartNumber": p.part_number, "ETag": p.etag} for p in parts]},
        )
    if digest is not None:
        tag_digest(root, key, digest)


def tag_digest(root: S3Root, key: str, digest: str) -> None:
    """Record a multipart object's SHA-256 as its tag: its metadata was fixed at CreateMultipartUpload.

    Best effort: the object is already complete; without the tag (tagging refused or
    unsupported) downloads fall back to its size.
    """
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        root.client.put_object_tagging(
            Bucket=root.bucket, Key=key, Tagging={"TagSet": [{"Key": DIGEST_KEY, "Value": digest}]}
        )
    except (BotoCoreError, ClientError) as exc:
        log.warning("could not record the digest of %s as a tag: %s", root.uri(key), exc)


@hookimpl
def abort_multipart(root: S3Root, path: str, upload_id: str) -> None:
    from botocore.exceptions import BotoCoreError, ClientError

    key = root.key(path)
    try:
        root.client.abort_multipart_upload(Bucket=root.bucket, Key=key, UploadId=upload_id)
    except ClientError as exc:
        if error_code(exc) == "NoSuchUpload":
            return  # aborted (or completed) already: abort is idempotent
        raise translate(exc, root, key) from exc
    except BotoCoreError as exc:
        raise translate(exc, root, key) from exc


@hookimpl
def list_parts(root: S3Root, path: str, upload_id: str) -> list[Part]:
    # NoSuchUpload (completed, aborted, expired by a lifecycle rule) is NotFound in the table.
    key = root.key(path)
    pages = root.client.get_paginator("list_parts").paginate(Bucket=root.bucket, Key=key, UploadId=upload_id)
    with translated(root, key):
        return [
            Part(p["PartNumber"], p["ETag"], size=p.get("Size"))
            for page in pages
            for p in page.get("Parts", ())
        ]


@hookimpl
def list_multipart_uploads(root: S3Root, path: str) -> Iterator[PendingUpload]:
    key = root.key(path)
    return _pending(root, key)


def _pending(root: S3Root, key: str) -> Iterator[PendingUpload]:
    pages = root.client.get_paginator("list_multipart_uploads").paginate(Bucket=root.bucket, Prefix=key)
    with translated(root, key or None):
        for page in pages:
            for upload in page.get("Uploads", ()):
                name = upload["Key"]
                if key and name != key and not name.startswith(f"{key}/"):
                    continue  # "foobar" is not below "foo"
                initiated = upload.get("Initiated")
                yield PendingUpload(
                    root.rel(name), upload["UploadId"], initiated.timestamp() if initiated else None
                )


@hookimpl
def presign(
    root: S3Root,
    path: str,
    method: str,
    expires_in: int,
    upload_id: str | None,
    part_number: int | None,
) -> PresignedUrl:
    key = root.key(path)
    if (upload_id is None) != (part_number is None):
        raise ValueError("presign: a multipart part needs both upload_id and part_number")
    params: dict[str, Any] = {"Bucket": root.bucket, "Key": key}
    if method == "GET":
        if upload_id is not None:
            raise ValueError("presign: multipart parts are uploaded with PUT, not GET")
        operation = "get_object"
        params["ResponseContentDisposition"] = attachment(posixpath.basename(key))
    elif upload_id is not None:
        operation = "upload_part"
        params.update(UploadId=upload_id, PartNumber=part_number)
    else:
        operation = "put_object"
        params.update(put_params(key))
    # SigV4 query signing; the bucket owner is folded into the signed query and any
    # other signed header (Content-Type, encryption...) is returned for the client to send.
    with translated(root, key), signed_headers() as headers:
        url = root.client.generate_presigned_url(
            operation, Params=params, ExpiresIn=expires_in, HttpMethod=method
        )
    return PresignedUrl(url, headers, expires_in)


def attachment(filename: str) -> str:
    """A Content-Disposition that saves the download as ``filename`` (RFC 6266)."""
    if filename.isascii() and filename.isprintable() and '"' not in filename and "\\" not in filename:
        return f'attachment; filename="{filename}"'
    fallback = "".join(c if c.isascii() and c.isprintable() and c not in '"\\' else "_" for c in filename)
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"
