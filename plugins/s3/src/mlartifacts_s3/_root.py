"""``s3://<bucket>/<prefix>`` URIs and the root handle every hook receives."""

from __future__ import annotations

import mimetypes
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from mlartifacts.errors import InvalidUri
from mlartifacts.objectstore import KeyPrefix
from mlartifacts.transfer import to_base64

from ._client import get_client
from ._config import S3Config

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

__all__ = ["DIGEST_KEY", "S3Root", "content_type", "parse_uri", "put_params"]


@dataclass(frozen=True)
class S3Root(KeyPrefix):
    """A bucket, a key prefix inside it ('' for the whole bucket) and the settings to reach them."""

    bucket: str
    prefix: str
    config: S3Config

    def uri(self, key: str | None = None) -> str:
        """``s3://bucket/key``, for messages."""
        return f"s3://{self.bucket}/{key}" if key else f"s3://{self.bucket}"

    @property
    def client(self) -> S3Client:
        """The shared boto3 client for this root's settings."""
        return get_client(self.config)

    @property
    def endpoint(self) -> str:
        """The endpoint requests go to, for messages."""
        return self.config.endpoint_url or self.client.meta.endpoint_url


#: The user-metadata key (``x-amz-meta-mlartifacts-sha256``) and, for multipart objects
#: (whose metadata is fixed when the upload starts), the object tag holding the SHA-256.
DIGEST_KEY = "mlartifacts-sha256"


def put_params(key: str, digest: str | None = None) -> dict[str, Any]:
    """The object's own arguments of a PutObject of ``key`` whose content has SHA-256 ``digest``.

    The one place that says what an object is stored with, in boto3's names: its
    Content-Type, its digest as user metadata (returned by HeadObject and GetObject),
    and ``x-amz-checksum-sha256``, which S3 checks against the body before storing it
    (BadDigest otherwise). ``MLFLOW_S3_UPLOAD_EXTRA_ARGS`` is merged over these by the
    client's event handler (its ``Metadata`` merged under ours).
    """
    params = content_type(key)
    if digest is not None:
        params["Metadata"] = {DIGEST_KEY: digest}
        params["ChecksumSHA256"] = to_base64(digest)
    return params


def content_type(key: str) -> dict[str, Any]:
    """``{"ContentType": ...}`` guessed from the key's name, or nothing."""
    guessed, _ = mimetypes.guess_type(key, strict=False)
    return {"ContentType": guessed} if guessed else {}


def parse_uri(uri: str, config: S3Config) -> S3Root:
    """Split ``s3://bucket/prefix``; refuse what would silently write to the wrong place."""
    parts = urlsplit(uri)
    if parts.scheme.lower() != "s3" or not parts.netloc:
        raise InvalidUri(f"{uri!r}: expected s3://<bucket>/<path>")
    if parts.query or parts.fragment:
        raise InvalidUri(f"{uri!r}: S3 URIs take no query or fragment ('?' or '#')")
    bucket, prefix = parts.netloc, parts.path.strip("/")
    _refuse_endpoint_in_root(uri, bucket, prefix, config)
    if ":" in bucket or "@" in bucket:
        raise InvalidUri(
            f"{uri!r}: {bucket!r} is not a bucket name; the endpoint goes in MLFLOW_S3_ENDPOINT_URL "
            "and the URI is s3://<bucket>/<path>"
        )
    if len(bucket) < 3:
        raise InvalidUri(f"{uri!r}: bucket names are at least 3 characters long, {bucket!r} is not")
    return S3Root(bucket, prefix, config)


def _refuse_endpoint_in_root(uri: str, bucket: str, prefix: str, config: S3Config) -> None:
    """The documented pitfall: an artifact root that repeats the endpoint MLFLOW_S3_ENDPOINT_URL names.

    ``s3://minio:9000/bucket/path`` (or a root that glued ``http://minio:9000/bucket/path``
    behind another one) would make keys such as ``bucket/path/...`` inside the wrong
    bucket, or ``<bucket>/<key>/<bucket>/<key>`` inside the right one.
    """
    endpoint = config.endpoint_netloc
    if endpoint is None:
        return
    host = endpoint.rsplit(":", 1)[0] if endpoint.count(":") == 1 else endpoint
    # host:port can never be a bucket or a sensible folder name; a bare host can,
    # unless it is a dotted DNS name or an address (a bucket called "minio" is fine).
    names = {endpoint, host} if "." in host else {endpoint}
    if bucket.lower() in names or names & {s.lower() for s in prefix.split("/")}:
        raise InvalidUri(
            f"{uri!r} contains the endpoint {endpoint!r} that MLFLOW_S3_ENDPOINT_URL={config.endpoint_url} "
            "already names: objects would be written under keys that repeat the endpoint and bucket "
            "(s3://<bucket>/<key>/<bucket>/<key>). Give the artifact root as s3://<bucket>/<path> "
            "and the endpoint only in MLFLOW_S3_ENDPOINT_URL"
        )
