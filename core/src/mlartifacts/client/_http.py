"""HTTP plumbing for the client: pooled sessions, the error table, server-info discovery."""

from __future__ import annotations

import json
import os
import threading
import time
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from .. import errors
from .._redact import redact_signatures
from ..config import env_int

if TYPE_CHECKING:
    import requests

__all__ = [
    "ServerInfo",
    "allow_insecure",
    "check",
    "close_sessions",
    "request",
    "session",
    "transport_error",
]

_RETRIABLE = {408, 429, 500, 502, 503, 504}
_SESSIONS: dict[int, requests.Session] = {}
_LOCK = threading.Lock()


def session(pool_size: int | None = None) -> requests.Session:
    """A requests session with a connection pool as large as the engine's concurrency.

    Retries are the engine's job (with backoff and deadlines), so the session
    itself never retries.
    """
    size = max(pool_size or env_int("MLARTIFACTS_MAX_WORKERS", 10, minimum=1) * 2, 10)
    found = _SESSIONS.get(size)
    if found is not None:
        return found
    with _LOCK:
        found = _SESSIONS.get(size)
        if found is None:
            import requests

            found = requests.Session()
            found.trust_env = False  # the environment is read once per host by request()
            adapter = _Adapter(pool_connections=4, pool_maxsize=size, max_retries=0)
            found.mount("http://", adapter)
            found.mount("https://", adapter)
            _SESSIONS[size] = found
        return found


#: What requests reads from the environment (proxies, their exceptions, CA bundles, netrc).
_ENV_NAMES = (
    "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "all_proxy",
    "no_proxy", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "NETRC", "HOME",
)  # fmt: skip
_ENVIRONMENTS: dict[tuple[object, ...], tuple[dict[str, str], tuple[str, str] | None, str | None]] = {}


def _environment(url: str) -> tuple[dict[str, str], tuple[str, str] | None, str | None]:
    """The proxies, netrc login and CA bundle requests would take from the environment for ``url``.

    requests looks them up on every request (scanning the whole environment twice
    and reading ~/.netrc): a millisecond per small file. Here they are looked up
    once per host and environment.
    """
    parts = urlsplit(url)
    key = (parts.scheme, parts.netloc, *(os.environ.get(name) for name in _ENV_NAMES))
    found = _ENVIRONMENTS.get(key)
    if found is None:
        from requests.utils import get_environ_proxies, get_netrc_auth

        proxies = get_environ_proxies(url)
        ca_bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
        found = (proxies, get_netrc_auth(url), ca_bundle)
        if len(_ENVIRONMENTS) > 256:
            _ENVIRONMENTS.clear()
        _ENVIRONMENTS[key] = found
    return found


def request(
    method: str,
    url: str,
    *,
    verify: bool | str = True,
    headers: dict[str, str] | None = None,
    netrc: bool = True,
    **kwargs: Any,
) -> requests.Response:
    """One request on the pooled session, honouring the environment as requests does.

    Proxies (``HTTPS_PROXY``, ``NO_PROXY``...) and ``REQUESTS_CA_BUNDLE`` apply as in
    requests; a ~/.netrc login is sent only when no Authorization header is and
    ``netrc`` is true (never to presigned storage URLs, whose signature is the login).
    """
    proxies, netrc_login, ca_bundle = _environment(url)
    if verify is True and ca_bundle:
        verify = ca_bundle
    auth = None
    if netrc and netrc_login and not any(k.lower() == "authorization" for k in headers or ()):
        auth = netrc_login
    return session().request(
        method, url, headers=headers, verify=verify, proxies=proxies, auth=auth, **kwargs
    )


_insecure_noted = False


def allow_insecure(reason: str) -> None:
    """The user turned TLS verification off on purpose: say so once, not on every request."""
    global _insecure_noted
    import logging
    import warnings

    from urllib3.exceptions import InsecureRequestWarning

    # Every time (filterwarnings replaces an identical filter): whoever resets the
    # warning filters in between (pytest, catch_warnings) must not bring the warning back.
    warnings.filterwarnings("ignore", category=InsecureRequestWarning)
    if not _insecure_noted:
        logging.getLogger("mlartifacts.client").warning("TLS certificates are not verified (%s)", reason)
        _insecure_noted = True


def check(response: requests.Response, what: str, accept: tuple[int, ...] = ()) -> requests.Response:
    """Raise the core's error for a failed response (unless its status is in ``accept``)."""
    status = response.status_code
    if status < 400 or status in accept:
        return response
    code, message = "", response.text[:500].strip()
    try:
        body = response.json()
        if isinstance(body, dict):
            code = str(body.get("error_code") or "")
            message = str(body.get("message") or body.get("detail") or message)
    except ValueError:
        pass
    text = f"{what}: HTTP {status}" + (f" {code}" if code else "") + (f": {message}" if message else "")
    text = redact_signatures(text)
    if status == 404:
        raise errors.NotFound(text)
    if status == 401:
        raise errors.Unauthenticated(
            text + " (set MLFLOW_TRACKING_USERNAME/PASSWORD or MLFLOW_TRACKING_TOKEN)"
        )
    if status == 403:
        raise errors.PermissionDenied(text)
    if status == 400 and message.startswith("Invalid path"):
        raise errors.InvalidPath(text)
    if status == 501:
        raise errors.NotSupported(text)
    if status in _RETRIABLE:
        raise errors.TransientError(text)
    raise errors.BackendError(text)


def transport_error(exc: Exception, what: str) -> errors.ArtifactError:
    """The core's error for a failure below HTTP (refused connection, reset, timeout, TLS)."""
    import requests

    detail = redact_signatures(str(exc))  # requests puts the whole URL in its messages
    if isinstance(exc, requests.exceptions.SSLError):
        return errors.BackendError(f"{what}: TLS failed: {detail}")
    if isinstance(exc, requests.exceptions.RequestException):
        return errors.TransientError(f"{what}: {type(exc).__name__}: {detail}")
    return errors.BackendError(f"{what}: {type(exc).__name__}: {detail}")


def close_sessions() -> None:
    """Close every pooled connection (e.g. after a fork, or before a server goes away)."""
    with _LOCK:
        sessions = list(_SESSIONS.values())
        _SESSIONS.clear()
    for found in sessions:
        found.close()


def _adapter_class() -> Any:
    from requests.adapters import HTTPAdapter

    class Adapter(HTTPAdapter):
        """Sends request bodies in 1 MiB blocks instead of urllib3's default 16 KiB."""

        def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
            kwargs["blocksize"] = 1024 * 1024
            super().init_poolmanager(*args, **kwargs)

    return Adapter


def _Adapter(**kwargs: Any) -> Any:
    return _adapter_class()(**kwargs)


class ServerInfo:
    """``/api/3.0/mlflow/server-info``, cached for a minute per server; failures mean "nothing"."""

    TTL = 60.0

    def __init__(self) -> None:
        self._cache: dict[str, tuple[float, dict[str, Any]]] = {}
        self._lock = threading.Lock()

    def get(
        self, url: str | None, headers: dict[str, str], verify: bool | str, cert: str | None
    ) -> dict[str, Any]:
        if url is None:
            return {}
        with self._lock:
            cached = self._cache.get(url)
            if cached is not None and time.monotonic() - cached[0] < self.TTL:
                return cached[1]
        try:
            response = request("GET", url, headers=headers, verify=verify, cert=cert, timeout=3)
            info = response.json() if response.status_code == 200 else {}
        except Exception:  # noqa: BLE001 - an unreachable or old server just has no extras
            info = {}
        if not isinstance(info, dict):
            info = {}
        with self._lock:
            self._cache[url] = (time.monotonic(), info)
        return info

    def clear(self) -> None:
        with self._lock:
            self._cache.clear()


def dumps(value: Any) -> bytes:
    return json.dumps(value).encode()
