"""google-cloud-storage clients: one per configuration, shared by every thread and every root.

A client holds the credentials (whose token refresh costs a round trip) and the
HTTP connection pool, so making one per file would pay both per file. Clients
are cached by :class:`GCSConfig` (timeouts, chunk sizes, emulator, pool size and
a digest of the environment ADC reads). The pool holds as many connections as
the engine runs requests at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mlartifacts.errors import Unauthenticated
from mlartifacts.shared import SharedCache

from ._config import GCSConfig

if TYPE_CHECKING:
    from google.auth.credentials import Credentials
    from google.auth.transport.requests import AuthorizedSession
    from google.cloud.storage import Client  # type: ignore[import-untyped]  # no py.typed

__all__ = ["GCSClient", "cached_clients", "get_client"]

#: Full control: uploads, deletes, compose and listing all need write or read access.
SCOPES = ("https://www.googleapis.com/auth/devstorage.full_control",)
_MAX_CLIENTS = 32
_clients: SharedCache[GCSConfig, GCSClient] = SharedCache(limit=_MAX_CLIENTS)

NO_CREDENTIALS_HELP = (
    "no Google Cloud credentials found (Application Default Credentials): set "
    "GOOGLE_APPLICATION_CREDENTIALS to a service-account key file, run "
    "`gcloud auth application-default login`, or run on Google Cloud with an attached "
    "service account (metadata server); for a public bucket set MLARTIFACTS_GCS_ANONYMOUS=true"
)


@dataclass(frozen=True)
class GCSClient:
    """The storage client, the authorized session it sends requests through, and the credentials."""

    storage: Client
    session: AuthorizedSession
    credentials: Credentials
    anonymous: bool

    @property
    def endpoint(self) -> str:
        """The JSON API's base URL (``https://storage.googleapis.com`` or the emulator's)."""
        return str(self.storage.api_endpoint).rstrip("/")


def get_client(config: GCSConfig) -> GCSClient:
    """The shared client for ``config``, made on first use (Unauthenticated without credentials)."""
    return _clients.get(config, lambda: _make_client(config))


def cached_clients() -> int:
    """How many clients are cached (for tests and diagnostics)."""
    return len(_clients)


def _credentials(config: GCSConfig) -> tuple[Credentials, str | None, bool]:
    """(credentials, project, anonymous) as ADC, the emulator and MLARTIFACTS_GCS_ANONYMOUS decide."""
    import os

    import google.auth
    from google.auth.credentials import AnonymousCredentials
    from google.auth.exceptions import DefaultCredentialsError

    explicit = bool(os.environ.get("GOOGLE_APPLICATION_CREDENTIALS"))
    # Against an emulator, google-cloud-storage is anonymous unless credentials are given.
    if config.anonymous or (config.emulator_host and not explicit):
        return AnonymousCredentials(), os.environ.get("GOOGLE_CLOUD_PROJECT"), True  # type: ignore[no-untyped-call]
    try:
        credentials, project = google.auth.default(scopes=SCOPES)
    except DefaultCredentialsError as exc:
        raise Unauthenticated(f"{NO_CREDENTIALS_HELP} ({exc})") from exc
    return credentials, project, False


def _make_client(config: GCSConfig) -> GCSClient:
    from google.auth.transport.requests import AuthorizedSession
    from google.cloud import storage  # type: ignore[import-untyped]  # no py.typed
    from requests.adapters import HTTPAdapter

    credentials, project, anonymous = _credentials(config)
    session = AuthorizedSession(credentials)  # type: ignore[no-untyped-call]
    # Retries are the engine's (with backoff and a deadline), not urllib3's.
    adapter = HTTPAdapter(pool_connections=4, pool_maxsize=config.max_pool_connections, max_retries=0)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    options: dict[str, Any] = {"api_endpoint": config.emulator_host} if config.emulator_host else {}
    client = storage.Client(
        project=project,  # None: no project, which objects do not need (only bucket creation does)
        credentials=credentials,
        _http=session,
        client_options=options or None,
    )
    return GCSClient(client, session, credentials, anonymous)
