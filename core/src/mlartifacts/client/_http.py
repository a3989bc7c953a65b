"""HTTP plumbing for the client, on urllib3: pooled connections, the error table, server-info.

Requests go straight to urllib3's pools. requests' own per-request work (merging
settings, preparing the request, re-reading the environment, runtime protocol
checks) cost more CPU than the HTTP exchange itself for a 10 KiB artifact; what
it reads from the environment is still honoured, looked up once per host with
requests' own helpers.
"""

from __future__ import annotations

import functools
import json
import os
import threading
import time
from typing import TYPE_CHECKING, Any, Iterator, Mapping
from urllib.parse import urlencode, urlsplit

from .. import errors
from .._redact import redact_signatures
from .._version import __version__
from ..config import env_int
from ..transfer import time_left

if TYPE_CHECKING:
    import urllib3

__all__ = [
    "Response",
    "ServerInfo",
    "allow_insecure",
    "check",
    "close_sessions",
    "request",
    "transport_error",
    "unreachable",
]

_RETRIABLE = {408, 429, 500, 502, 503, 504}
_BLOCK = 1024 * 1024  # request bodies go out in 1 MiB writes, not http.client's 8 KiB
_USER_AGENT = f"mlartifacts/{__version__}"
_MANAGERS: dict[tuple[str | None, bool | str, str | None], urllib3.PoolManager] = {}
_LOCK = threading.Lock()


class Response:
    """An HTTP response, with the names the client uses (as requests names them).

    Bodies are read up front unless the request asked for a stream; a streamed
    response gives its connection back to the pool once read to the end, and
    closes it if dropped midway.
    """

    __slots__ = ("_consumed", "_raw", "headers", "status_code")

    def __init__(self, raw: urllib3.BaseHTTPResponse, streamed: bool) -> None:
        self._raw = raw
        self._consumed = not streamed
        self.status_code = raw.status
        self.headers: Mapping[str, str] = raw.headers

    @property
    def content(self) -> bytes:
        if not self._consumed:
            self._raw.read(decode_content=True, cache_content=True)
            self._consumed = True
            self._raw.release_conn()
        return self._raw.data or b""

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", "replace")

    def json(self) -> Any:
        return json.loads(self.content)

    def iter_content(self, size: int) -> Iterator[bytes]:
        """The body in blocks of up to ``size`` bytes, decoded as the server encoded it."""
        if self._consumed:
            yield self.content
            return
        yield from self._raw.stream(size, decode_content=True)
        self._consumed = True
        self._raw.release_conn()

    def close(self) -> None:
        if not self._consumed:
            self._raw.close()  # the rest of the body is unread: the connection cannot be reused
        self._raw.release_conn()

    def __enter__(self) -> Response:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _pool_size() -> int:
    return max(env_int("MLARTIFACTS_MAX_WORKERS", 10, minimum=1) * 2, 10)


def _tls_options(verify: bool | str, cert: str | None) -> dict[str, Any]:
    if verify is False:
        options: dict[str, Any] = {"cert_reqs": "CERT_NONE", "assert_hostname": False}
    elif isinstance(verify, str):
        options = {"cert_reqs": "CERT_REQUIRED"}
        options["ca_cert_dir" if os.path.isdir(verify) else "ca_certs"] = verify
    else:
        import certifi  # the CA bundle requests (and so MLflow's client) trusts by default

        options = {"cert_reqs": "CERT_REQUIRED", "ca_certs": certifi.where()}
    if cert:
        options["cert_file"] = cert  # one PEM with the certificate and its key, as requests takes it
    return options


def _manager(proxy: str | None, verify: bool | str, cert: str | None) -> urllib3.PoolManager:
    """The pool manager for one proxy and TLS setup: connections to each host are reused.

    Retries are the engine's job (with backoff and deadlines), so urllib3 never
    retries; it follows redirects, as requests did.
    """
    key = (proxy, verify, cert)
    found = _MANAGERS.get(key)
    if found is not None:
        return found
    with _LOCK:
        found = _MANAGERS.get(key)
        if found is None:
            import urllib3

            options: dict[str, Any] = {
                "num_pools": 16,
                "maxsize": _pool_size(),
                "block": False,
                "blocksize": _BLOCK,
                **_tls_options(verify, cert),
            }
            if proxy is None:
                found = urllib3.PoolManager(**options)
            elif proxy.lower().startswith("socks"):
                try:
                    from urllib3.contrib.socks import SOCKSProxyManager
                except ImportError:
                    raise errors.ConfigError(
                        f"the SOCKS proxy {proxy} needs PySocks (pip install 'urllib3[socks]')"
                    ) from None
                found = SOCKSProxyManager(proxy, **options)
            else:
                parts = urllib3.util.parse_url(proxy)
                headers = urllib3.util.make_headers(proxy_basic_auth=parts.auth) if parts.auth else None
                found = urllib3.ProxyManager(proxy, proxy_headers=headers, **options)
            _MANAGERS[key] = found
        return found


#: What requests reads from the environment (proxies, their exceptions, CA bundles, netrc).
_ENV_NAMES = (
    "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "all_proxy",
    "no_proxy", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "NETRC", "HOME",
)  # fmt: skip
_ENVIRONMENTS: dict[tuple[object, ...], tuple[str | None, tuple[str, str] | None, str | None]] = {}


def _environment(url: str) -> tuple[str | None, tuple[str, str] | None, str | None]:
    """The proxy, netrc login and CA bundle requests would take from the environment for ``url``.

    Looked up with requests' helpers (``NO_PROXY`` with CIDR ranges, ~/.netrc), once
    per host and environment rather than on every request, and only when there is
    something to look up (importing requests costs more than a small transfer).
    """
    parts = urlsplit(url)
    environment = tuple(map(os.environ.get, _ENV_NAMES))
    key = (parts.scheme, parts.netloc, *environment)
    found = _ENVIRONMENTS.get(key)
    if found is None:
        proxy, login = None, None
        if any(environment[: _ENV_NAMES.index("REQUESTS_CA_BUNDLE")]):
            from requests.utils import get_environ_proxies

            proxies = get_environ_proxies(url)
            proxy = proxies.get(parts.scheme) or proxies.get("all")
        if _netrc_exists():
            from requests.utils import get_netrc_auth

            login = get_netrc_auth(url)
        ca_bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
        found = (proxy or None, login, ca_bundle)
        if len(_ENVIRONMENTS) > 256:
            _ENVIRONMENTS.clear()
        _ENVIRONMENTS[key] = found
    return found


def _netrc_exists() -> bool:
    """Whether there is a netrc file to read (where requests would look for one)."""
    if os.environ.get("NETRC"):
        return True
    home = os.path.expanduser("~")
    return any(os.path.exists(os.path.join(home, name)) for name in (".netrc", "_netrc"))


_MIN_TIMEOUT = 0.1  # a request made as the deadline passes still fails, not waits


def request(
    method: str,
    url: str,
    *,
    headers: Mapping[str, str] | None = None,
    params: Mapping[str, str] | None = None,
    data: Any = None,
    json_body: Any = None,
    verify: bool | str = True,
    cert: str | None = None,
    timeout: float | None = None,
    stream: bool = False,
    netrc: bool = True,
    connect_timeout: float | None = None,
) -> Response:
    """One request on the pooled connections, honouring the environment as requests does.

    Proxies (``HTTPS_PROXY``, ``NO_PROXY``...) and ``REQUESTS_CA_BUNDLE`` apply as in
    requests; a ~/.netrc login is sent only when no Authorization header is and
    ``netrc`` is true (never to presigned storage URLs, whose signature is the login).
    ``data`` is bytes, a file object (give Content-Length in ``headers``), or an
    iterable of bytes (sent chunked).

    Inside an operation with a deadline (MLFLOW_ARTIFACT_UPLOAD_DOWNLOAD_TIMEOUT), the
    socket timeout is the smaller of ``timeout`` and the time left, so a hung server
    never holds a request the engine has given up on. ``connect_timeout``, when
    given, bounds the connection alone (``timeout`` then bounds each read).
    """
    import urllib3

    left = time_left()
    if left is not None:
        timeout = max(_MIN_TIMEOUT, min(timeout, left) if timeout is not None else left)

    proxy, netrc_login, ca_bundle = _environment(url)
    if verify is True and ca_bundle:
        verify = ca_bundle
    sent = {"User-Agent": _USER_AGENT, **(headers or {})}
    if netrc and netrc_login and not any(k.lower() == "authorization" for k in sent):
        sent.update(urllib3.util.make_headers(basic_auth=":".join(netrc_login)))
    if params:
        url += ("&" if "?" in url else "?") + urlencode(params)
    if json_body is not None:
        data = json.dumps(json_body).encode()
        sent["Content-Type"] = "application/json"
    limit: float | urllib3.Timeout | None = timeout
    if connect_timeout is not None:
        connect = connect_timeout if timeout is None else min(connect_timeout, timeout)
        limit = urllib3.Timeout(connect=connect, read=timeout)
    raw = _manager(proxy, verify, cert).urlopen(
        method,
        url,
        body=data,
        headers=sent,
        timeout=limit,
        retries=_no_retries(),
        preload_content=not stream,
        decode_content=True,
    )
    return Response(raw, streamed=stream)


@functools.cache
def _no_retries() -> urllib3.Retry:
    import urllib3

    return urllib3.Retry(
        total=None, connect=0, read=0, status=0, other=0, redirect=10, raise_on_redirect=False
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


def check(response: Response, what: str, accept: tuple[int, ...] = ()) -> Response:
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


def transport_error(exc: Exception, what: str, url: str | None = None) -> errors.ArtifactError:
    """The core's error for a failure below HTTP (refused connection, reset, timeout, TLS).

    Names the URL it failed on (signatures masked) when given: for a presigned
    storage URL, that is the only place the storage host appears.
    """
    from urllib3.exceptions import HTTPError, MaxRetryError, SSLError

    if isinstance(exc, MaxRetryError) and exc.reason is not None:
        exc = exc.reason  # the failure itself, not urllib3's "retries exhausted" wrapper
    where = f" ({redact_signatures(url)})" if url else ""
    detail = redact_signatures(str(exc))
    if isinstance(exc, SSLError) or "CERTIFICATE_VERIFY_FAILED" in detail:
        return errors.BackendError(f"{what}: TLS failed{where}: {detail}")
    if isinstance(exc, (HTTPError, OSError)):
        return errors.TransientError(f"{what}: {type(exc).__name__}{where}: {detail}")
    return errors.BackendError(f"{what}: {type(exc).__name__}{where}: {detail}")


def unreachable(exc: BaseException) -> bool:
    """Whether a request failed before any server answered: no route, name, connection or proxy."""
    from urllib3.exceptions import ConnectTimeoutError, MaxRetryError, NewConnectionError, ProxyError

    if isinstance(exc, MaxRetryError) and exc.reason is not None:
        exc = exc.reason
    return isinstance(
        exc, (NewConnectionError, ConnectTimeoutError, ProxyError)
    )  # names too: NameResolutionError


def close_sessions() -> None:
    """Close every pooled connection (e.g. after a fork, or before a server goes away)."""
    with _LOCK:
        managers = list(_MANAGERS.values())
        _MANAGERS.clear()
    for manager in managers:
        manager.clear()


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
