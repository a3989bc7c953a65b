"""``gs://<bucket>/<prefix>`` URIs and the root handle every hook receives."""

from __future__ import annotations

import mimetypes
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import quote, urlsplit

from mlartifacts.errors import InvalidUri
from mlartifacts.objectstore import KeyPrefix

from ._client import GCSClient, get_client
from ._config import GCSConfig

if TYPE_CHECKING:
    from google.cloud.storage import Bucket  # type: ignore[import-untyped]  # no py.typed

__all__ = ["GCSRoot", "content_type", "parse_uri"]

# GCS bucket names: 3-63 characters (up to 222 with dots), lowercase letters, digits, - _ .
_BUCKET = re.compile(r"[a-z0-9][a-z0-9._-]{1,220}[a-z0-9]")


@dataclass(frozen=True)
class GCSRoot(KeyPrefix):
    """A bucket, an object-name prefix inside it ('' for the whole bucket) and the settings to reach them."""

    bucket: str
    prefix: str
    config: GCSConfig

    def uri(self, key: str | None = None) -> str:
        """``gs://bucket/key``, for messages."""
        return f"gs://{self.bucket}/{key}" if key else f"gs://{self.bucket}"

    @property
    def client(self) -> GCSClient:
        """The shared client for this root's settings."""
        return get_client(self.config)

    @property
    def handle(self) -> Bucket:
        """The SDK's bucket object (made without a request)."""
        return self.client.storage.bucket(self.bucket)

    @property
    def endpoint(self) -> str:
        """The endpoint requests go to, for messages."""
        return self.config.endpoint

    def media_url(self, key: str) -> str:
        """The JSON API's download URL of the object ``key``."""
        return (
            f"{self.client.endpoint}/download/storage/v1/b/{quote(self.bucket, safe='')}"
            f"/o/{quote(key, safe='')}?alt=media"
        )


def content_type(key: str) -> str:
    """The Content-Type guessed from the object's name (application/octet-stream if unknown)."""
    guessed, _ = mimetypes.guess_type(key, strict=False)
    return guessed or "application/octet-stream"


def parse_uri(uri: str, config: GCSConfig) -> GCSRoot:
    """Split ``gs://bucket/prefix``; refuse what would silently write to the wrong place."""
    parts = urlsplit(uri)
    if parts.scheme.lower() != "gs" or not parts.netloc:
        raise InvalidUri(f"{uri!r}: expected gs://<bucket>/<path>")
    if parts.query or parts.fragment:
        raise InvalidUri(f"{uri!r}: gs:// URIs take no query or fragment ('?' or '#')")
    bucket, prefix = parts.netloc, parts.path.strip("/")
    if not _BUCKET.fullmatch(bucket):
        raise InvalidUri(
            f"{uri!r}: {bucket!r} is not a GCS bucket name (3-63 lowercase letters, digits, '-', '_' "
            "and '.'); the emulator's address goes in STORAGE_EMULATOR_HOST, not in the URI"
        )
    if "//" in prefix:
        raise InvalidUri(f"{uri!r}: empty path segments ('//') would make object names no path can reach")
    return GCSRoot(bucket, prefix, config)
