"""Browser-facing defences: allowed ``Host`` headers (DNS rebinding) and cross-origin requests (CSRF).

A page on another site can make a visitor's browser send requests to a server on
the visitor's machine or network. Two checks stop it, as MLflow 3's server does:

- **Host**: a DNS-rebinding page reaches us under its own name, so the ``Host``
  header names a host the operator never chose. Only allowed hosts are served
  (default: ``localhost``, loopback and private IP addresses, and the ``--host``
  the server listens on).
- **Origin**: browsers send ``Origin`` with every cross-origin request that may
  change something. Writes (anything but GET, HEAD, OPTIONS) from an origin that
  is neither this server nor an allowed one are refused; allowed origins get CORS
  headers, including answers to preflight requests. Reading is not blocked here
  (no CORS header is sent, so the browser keeps the answer from the page).

Clients that are not browsers (ours, MLflow's, curl) send no ``Origin`` and are
unaffected. ``/health`` is exempt from the Host check, for load balancers.
"""

from __future__ import annotations

import fnmatch
import ipaddress
import json
from dataclasses import dataclass

from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["SecurityMiddleware", "SecurityPolicy"]

_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_DEFAULT_ORIGINS = (
    "http://localhost:*", "http://127.0.0.1:*", "http://[::1]:*",
    "https://localhost:*", "https://127.0.0.1:*", "https://[::1]:*",
    "http://localhost", "http://127.0.0.1", "http://[::1]",
    "https://localhost", "https://127.0.0.1", "https://[::1]",
)  # fmt: skip
_ALLOW_HEADERS = b"Authorization, Content-Type, Range, If-None-Match, If-Range"
_ALLOW_METHODS = b"GET, HEAD, PUT, POST, DELETE, OPTIONS"


def _split(value: str | None) -> tuple[str, ...]:
    return tuple(item.strip().lower() for item in (value or "").split(",") if item.strip())


def _host_name(host: str) -> str:
    """``host`` of ``host:port`` (IPv6 literals keep their brackets)."""
    if host.startswith("["):
        return host[: host.find("]") + 1] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def _is_local_address(name: str) -> bool:
    try:
        address = ipaddress.ip_address(name.strip("[]"))
    except ValueError:
        return False
    return address.is_loopback or address.is_private or address.is_link_local


@dataclass(frozen=True)
class SecurityPolicy:
    """Which ``Host`` headers and ``Origin``s the server accepts.

    ``allowed_hosts`` and ``allowed_origins`` are patterns (``*`` matches anything:
    ``*.example.com``, ``192.168.*``, ``https://*.example.com``); a host pattern
    with a port matches ``Host`` with that port, one without matches any port.
    Empty tuples mean the defaults.
    """

    allowed_hosts: tuple[str, ...] = ()
    allowed_origins: tuple[str, ...] = ()
    listen_host: str = "127.0.0.1"
    x_frame_options: str = "SAMEORIGIN"

    @classmethod
    def from_options(
        cls, allowed_hosts: str | None, allowed_origins: str | None, listen_host: str, x_frame_options: str
    ) -> SecurityPolicy:
        return cls(_split(allowed_hosts), _split(allowed_origins), listen_host.lower(), x_frame_options)

    def host_allowed(self, host: str) -> bool:
        host = host.lower()
        name = _host_name(host)
        if self.allowed_hosts:
            return any(
                fnmatch.fnmatchcase(host, p) or fnmatch.fnmatchcase(name, p) for p in self.allowed_hosts
            )
        if name in ("localhost", self.listen_host) and self.listen_host not in ("0.0.0.0", "::", "[::]"):
            return True
        return name == "localhost" or _is_local_address(name)

    def origin_allowed(self, origin: str) -> bool:
        origin = origin.lower()
        patterns = self.allowed_origins or _DEFAULT_ORIGINS
        return origin != "null" and any(fnmatch.fnmatchcase(origin, p) for p in patterns)


class SecurityMiddleware:
    """Applies a :class:`SecurityPolicy` to every HTTP request."""

    def __init__(self, app: ASGIApp, policy: SecurityPolicy, exempt: tuple[str, ...] = ()) -> None:
        self.app = app
        self.policy = policy
        self.exempt = exempt

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode(): v.decode("latin-1") for k, v in scope["headers"] if k in (b"host", b"origin")}
        host, origin = headers.get("host"), headers.get("origin")
        if host is not None and scope["path"] not in self.exempt and not self.policy.host_allowed(host):
            await _refuse(send, f"Host {host[:100]!r} is not allowed: start the server with --allowed-hosts")
            return
        cors: list[tuple[bytes, bytes]] = []
        if origin is not None and not _same_origin(scope, origin, host):
            if self.policy.origin_allowed(origin):
                cors = [(b"access-control-allow-origin", origin.encode("latin-1")), (b"vary", b"Origin")]
            elif scope["method"] not in _SAFE_METHODS or _is_preflight(scope):
                await _refuse(
                    send,
                    f"Cross-origin request from {origin[:100]!r} refused: start the server with "
                    "--cors-allowed-origins to allow it",
                )
                return
        if cors and _is_preflight(scope):
            await send(
                {
                    "type": "http.response.start",
                    "status": 204,
                    "headers": [
                        *cors,
                        (b"access-control-allow-methods", _ALLOW_METHODS),
                        (b"access-control-allow-headers", _ALLOW_HEADERS),
                        (b"access-control-max-age", b"600"),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": b""})
            return
        extra = [*cors, (b"x-frame-options", self.policy.x_frame_options.encode("latin-1"))]

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", ()), *extra]}
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _is_preflight(scope: Scope) -> bool:
    return scope["method"] == "OPTIONS" and any(
        k == b"access-control-request-method" for k, _ in scope["headers"]
    )


def _same_origin(scope: Scope, origin: str, host: str | None) -> bool:
    # The scheme is not compared: behind a TLS-terminating proxy the page is https while
    # this server sees http. The Host has been checked already, and browsers never forge Origin.
    return host is not None and origin.lower().partition("://")[2] == host.lower()


async def _refuse(send: Send, message: str) -> None:
    body = json.dumps({"error_code": "PERMISSION_DENIED", "message": message}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 403,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})
