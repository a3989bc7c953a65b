"""``wasbs://`` and ``abfss://`` URIs and the root handle every hook receives.

``wasbs://<container>@<account>.blob.<suffix>/<path>`` as MLflow documents it (also
``wasb://`` and the sovereign clouds' suffixes, ``core.chinacloudapi.cn``,
``core.usgovcloudapi.net``...); ``abfss://<container>@<account>.dfs.<suffix>/<path>``
names an ADLS Gen2 account, which is served through its Blob endpoint
(``dfs`` becomes ``blob``).
"""

from __future__ import annotations

import mimetypes
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from mlartifacts.errors import InvalidUri
from mlartifacts.objectstore import KeyPrefix

from ._client import Account, Service, get_service
from ._config import AzureConfig

if TYPE_CHECKING:
    from azure.storage.blob import BlobClient, ContainerClient

__all__ = ["SCHEMES", "AzureRoot", "content_type", "parse_uri"]

SCHEMES = ("wasbs", "wasb", "abfss", "abfs")
# Service names in the host: Blob for wasb(s), Data Lake ("dfs") for abfs(s).
_SERVICE = {"wasbs": "blob", "wasb": "blob", "abfss": "dfs", "abfs": "dfs"}
_ACCOUNT = re.compile(r"[a-z0-9]{3,24}")
_CONTAINER = re.compile(r"(?=.{3,63}$)[a-z0-9]+(-[a-z0-9]+)*")  # no leading, trailing or double '-'
_SUFFIX = re.compile(r"[a-z0-9-]+(\.[a-z0-9-]+)+")


@dataclass(frozen=True)
class AzureRoot(KeyPrefix):
    """A container, a blob-name prefix inside it ('' for the whole container) and how to reach them."""

    scheme: str
    account: Account
    container: str
    prefix: str
    config: AzureConfig
    host: str  # as the URI wrote it, for messages

    name = KeyPrefix.key  # Azure calls a key a blob name

    def uri(self, name: str | None = None) -> str:
        """``wasbs://container@host/name``, for messages."""
        base = f"{self.scheme}://{self.container}@{self.host}"
        return f"{base}/{name}" if name else base

    @property
    def service(self) -> Service:
        """The shared client (and its credential) for this root's account and settings."""
        return get_service(self.config, self.account)

    @property
    def container_client(self) -> ContainerClient:
        return self.service.client.get_container_client(self.container)

    def blob(self, name: str) -> BlobClient:
        """A client for one blob (cheap: it shares the service's connection pool)."""
        return self.service.client.get_blob_client(self.container, name)

    @property
    def endpoint(self) -> str:
        """The Blob service URL requests go to, for messages."""
        return self.service.target.url


def content_type(name: str) -> str | None:
    """The Content-Type guessed from a blob's name, or None."""
    guessed, _ = mimetypes.guess_type(name, strict=False)
    return guessed


def parse_uri(uri: str, config: AzureConfig) -> AzureRoot:
    """Split ``wasbs://container@account.blob.suffix/path``; refuse what would go to the wrong place."""
    parts = urlsplit(uri)
    scheme = parts.scheme.lower()
    shape = (
        f"{scheme or 'wasbs'}://<container>@<account>.{_SERVICE.get(scheme, 'blob')}.core.windows.net/<path>"
    )
    if scheme not in _SERVICE or not parts.netloc:
        raise InvalidUri(f"{uri!r}: expected {shape}")
    if parts.query or parts.fragment:
        raise InvalidUri(
            f"{uri!r}: Azure URIs take no query or fragment ('?' or '#'); a SAS goes in the environment"
        )
    container, at, host = parts.netloc.rpartition("@")
    if not at or not container:
        raise InvalidUri(f"{uri!r}: no container: expected {shape}")
    if ":" in container:
        raise InvalidUri(f"{uri!r}: credentials do not belong in the URI; set AZURE_STORAGE_ACCESS_KEY or "
                         "AZURE_STORAGE_CONNECTION_STRING")  # fmt: skip
    host = host.lower()
    account, _, rest = host.partition(".")
    service, _, suffix = rest.partition(".")
    if service != _SERVICE[scheme] or not _SUFFIX.fullmatch(suffix):
        raise InvalidUri(
            f"{uri!r}: {host!r} is not an account's {_SERVICE[scheme]} endpoint: expected {shape}"
        )
    if not _ACCOUNT.fullmatch(account):
        raise InvalidUri(
            f"{uri!r}: {account!r} is not a storage account name (3-24 lowercase letters and digits)"
        )
    if not _CONTAINER.fullmatch(container):
        raise InvalidUri(
            f"{uri!r}: {container!r} is not a container name (3-63 lowercase letters, digits and single "
            "hyphens, starting and ending with a letter or digit)"
        )
    # ADLS Gen2 accounts answer the Blob API too; their dfs host becomes the blob host.
    url = f"https://{account}.blob.{suffix}"
    return AzureRoot(scheme, Account(account, url), container, parts.path.strip("/"), config, host)
