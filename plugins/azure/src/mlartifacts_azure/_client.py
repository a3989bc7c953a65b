"""Blob service clients: one per account, endpoint and credential, shared by every thread and root.

A ``BlobServiceClient`` is thread-safe and holds the connection pool (a
``requests`` session sized for the engine's workers); container and blob clients
made from it share that pool, so nothing is built per file. Credentials are
chosen in MLflow's order: ``AZURE_STORAGE_CONNECTION_STRING``, then
``AZURE_STORAGE_ACCESS_KEY``, then ``DefaultAzureCredential`` (azure-identity is
imported only then).

The SDK retries once, quickly, for a dropped connection; the core's engine
does the real retrying (with backoff and the transfer's deadline), so the
SDK's default of three retries with 15-second backoffs would only stack up.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mlartifacts.errors import ConfigError, Unauthenticated
from mlartifacts.shared import SharedCache

from ._config import ACCESS_KEY_VAR, CONNECTION_STRING_VAR, AzureConfig, parse_connection_string

if TYPE_CHECKING:
    from azure.storage.blob import BlobServiceClient

__all__ = ["Account", "Service", "cached_clients", "get_service", "resolve_target"]

_MAX_CLIENTS = 32
#: Bytes per download request (see _make_client).
GET_SIZE = 3 * 1024 * 1024
#: Seconds to open a connection (azure-core's default), never more than the request timeout.
CONNECT_TIMEOUT = 20.0
_clients: SharedCache[tuple[AzureConfig, Account], Service] = SharedCache(limit=_MAX_CLIENTS)


@dataclass(frozen=True)
class Account:
    """A storage account as the URI names it: its name and its Blob service URL."""

    name: str
    url: str  # https://<account>.blob.<suffix>


@dataclass(frozen=True)
class Target:
    """Where requests go and with which credential (resolved from the config and the account)."""

    url: str
    account_name: str
    credential: Any  # AzureNamedKeyCredential, a SAS string, or a TokenCredential
    source: str  # the setting the credential came from, for messages


@dataclass(frozen=True)
class Service:
    """A shared client and what it signs with."""

    client: BlobServiceClient
    target: Target


def get_service(config: AzureConfig, account: Account) -> Service:
    """The shared client for ``account`` under ``config``, made on first use."""
    return _clients.get((config, account), lambda: _make_client(config, account))


def cached_clients() -> int:
    """How many clients are cached (for tests and diagnostics)."""
    return len(_clients)


def resolve_target(config: AzureConfig, account: Account) -> Target:
    """The service URL and credential for ``account``, in MLflow's order of credentials."""
    from azure.core.credentials import AzureNamedKeyCredential

    if config.connection_string:
        pairs = {k.lower(): v for k, v in parse_connection_string(config.connection_string).items()}
        name = pairs.get("accountname")
        if name and name != account.name:
            raise ConfigError(
                f"{CONNECTION_STRING_VAR} is for the account {name!r}, but the URI names {account.name!r}: "
                "unset it or use a URI of that account"
            )
        url = config.endpoint or pairs.get("blobendpoint", "").rstrip("/") or account.url
        if "accountkey" in pairs:
            if not name:
                raise ConfigError(f"{CONNECTION_STRING_VAR} has an AccountKey but no AccountName")
            credential: Any = AzureNamedKeyCredential(name, pairs["accountkey"])
        else:
            credential = pairs["sharedaccesssignature"].lstrip("?")
        return Target(url, name or account.name, credential, CONNECTION_STRING_VAR)
    url = config.endpoint or account.url
    if config.access_key:
        key = AzureNamedKeyCredential(account.name, config.access_key)
        return Target(url, account.name, key, ACCESS_KEY_VAR)
    try:
        from azure.identity import DefaultAzureCredential
    except ImportError as exc:  # azure-identity is a dependency; a broken install says so
        raise Unauthenticated(
            f"no {CONNECTION_STRING_VAR} or {ACCESS_KEY_VAR} is set and azure-identity cannot be "
            f"imported ({exc}): pip install azure-identity"
        ) from exc
    # TLS settings apply to the token endpoint too (a managed identity behind a proxy's CA).
    chain = DefaultAzureCredential(**_transport_options(config))
    return Target(url, account.name, chain, "DefaultAzureCredential")


def _transport_options(config: AzureConfig) -> dict[str, Any]:
    return {"connection_verify": config.verify} if config.verify is not True else {}


def _session(config: AzureConfig) -> Any:
    import requests
    from azure.core.pipeline.transport import _requests_basic
    from requests.adapters import HTTPAdapter
    from urllib3.util.retry import Retry

    # azure-core's own adapter reads sockets in larger blocks (faster downloads); it is
    # private, so a plain one stands in if it ever goes away.
    adapter_class = getattr(_requests_basic, "BiggerBlockSizeHTTPAdapter", HTTPAdapter)

    session = requests.Session()
    adapter = adapter_class(
        pool_connections=4,
        pool_maxsize=config.max_connections,
        max_retries=Retry(total=False, redirect=False, raise_on_status=False),  # the pipeline retries
    )
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


def _make_client(config: AzureConfig, account: Account) -> Service:
    from azure.core.pipeline.transport import RequestsTransport
    from azure.storage.blob import BlobServiceClient, LinearRetry

    target = resolve_target(config, account)
    transport = RequestsTransport(
        session=_session(config),
        session_owner=False,
        connection_timeout=CONNECT_TIMEOUT
        if config.timeout is None
        else min(CONNECT_TIMEOUT, config.timeout),
        # Responses are read in blocks of this size: azure-core's default of 4 KiB costs
        # a Python call per 4 KiB, which made downloads CPU-bound (the transport the SDK
        # builds for itself reads 256 KiB blocks; we read a whole request's 3 MiB).
        connection_data_block_size=GET_SIZE,
        # A socket that stays silent this long is dead (requests' read timeout is per read).
        read_timeout=config.timeout,
        **_transport_options(config),
    )
    client = BlobServiceClient(
        target.url,
        credential=target.credential,
        transport=transport,
        retry_policy=LinearRetry(backoff=1, random_jitter_range=1, retry_total=1),
        # Blocks and single puts are sized by the core's engine; these only matter
        # when the SDK chunks by itself (never on the hooks' paths).
        max_single_put_size=64 * 1024 * 1024,
        max_block_size=8 * 1024 * 1024,
        # A download (one of the engine's ranges, or a whole small blob) is fetched in
        # 3 MiB requests, one after the other, so each worker holds a few MiB (about
        # three copies of one request): the SDK's default reads the first 32 MiB whole.
        # With 10 workers, 4 MiB measured 170 MiB peak RSS, 3 MiB 140, 2 MiB 110-125,
        # each smaller size costing more requests.
        max_single_get_size=GET_SIZE,
        max_chunk_get_size=GET_SIZE,
    )
    return Service(client, target)
