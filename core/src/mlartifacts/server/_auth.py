"""Optional authentication for the service: HTTP Basic users and bearer tokens.

Operators give a users file (``name:password`` per line, the password in clear or
as a hash from ``mlartifacts hash-password``) and/or a tokens file (one token per
line, in clear or as ``sha256:<hex>``). When either is configured, every route
refuses anonymous requests with 401 — except ``/health``, which reveals nothing.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import hmac
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

import anyio.to_thread
from starlette.types import ASGIApp, Receive, Scope, Send

from ..errors import ConfigError

__all__ = ["AuthMiddleware", "Credentials", "hash_password", "verify_password"]

_ALGORITHM = "pbkdf2_sha256"
_ITERATIONS = 310_000


def hash_password(password: str, *, iterations: int = _ITERATIONS, salt: bytes | None = None) -> str:
    """A salted PBKDF2-SHA256 hash, ``pbkdf2_sha256$<iterations>$<salt>$<hash>`` (base64)."""
    salt = salt if salt is not None else os.urandom(16)
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    encode = base64.b64encode
    return f"{_ALGORITHM}${iterations}${encode(salt).decode()}${encode(digest).decode()}"


def verify_password(password: str, stored: str) -> bool:
    """Whether ``password`` matches ``stored`` (a hash from :func:`hash_password`, or clear text)."""
    if stored.startswith(_ALGORITHM + "$"):
        try:
            _, iterations, salt, digest = stored.split("$")
            expected = base64.b64decode(digest)
            actual = hashlib.pbkdf2_hmac("sha256", password.encode(), base64.b64decode(salt), int(iterations))
        except (ValueError, binascii.Error):
            return False
        return hmac.compare_digest(actual, expected)
    return hmac.compare_digest(password.encode(), stored.encode())


def _token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _lines(path: Path) -> list[tuple[int, str]]:
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from None
    return [
        (n, line.strip())
        for n, line in enumerate(text.splitlines(), 1)
        if line.strip() and not line.startswith("#")
    ]


@dataclass(frozen=True)
class Credentials:
    """Who may call the service: users (name -> stored password) and token digests."""

    users: Mapping[str, str]
    token_digests: frozenset[str]

    @classmethod
    def load(cls, users_file: str | None, tokens_file: str | None) -> Credentials | None:
        """Read the files; None when neither is given (authentication off)."""
        if not users_file and not tokens_file:
            return None
        users: dict[str, str] = {}
        if users_file:
            for number, line in _lines(Path(users_file)):
                name, sep, stored = line.partition(":")
                if not sep or not name or not stored:
                    raise ConfigError(f"{users_file}:{number}: expected 'name:password' or 'name:<hash>'")
                users[name] = stored
        digests = set()
        if tokens_file:
            for _, line in _lines(Path(tokens_file)):
                digests.add(
                    line[len("sha256:") :].lower() if line.startswith("sha256:") else _token_digest(line)
                )
        if not users and not digests:
            raise ConfigError("authentication is configured but the users and tokens files are empty")
        return cls(users, frozenset(digests))

    def authenticate(self, authorization: str | None) -> str | None:
        """The principal an ``Authorization`` header proves, or None.

        Slow (PBKDF2) for hashed passwords: call it from a worker thread. An unknown user
        costs as much as a wrong password, so timing does not tell which names exist.
        """
        if not authorization or len(authorization) > MAX_AUTHORIZATION:
            return None
        scheme, _, value = authorization.partition(" ")
        scheme = scheme.lower()
        if scheme == "basic" and self.users:
            try:
                name, _, password = base64.b64decode(value.strip()).decode().partition(":")
            except (ValueError, binascii.Error, UnicodeDecodeError):
                return None
            stored = self.users.get(name)
            if stored is None:
                verify_password(password, self._decoy)  # the same work as for a real user
                return None
            return name if _verified(name, password, stored) else None
        if scheme == "bearer" and self.token_digests:
            digest = _token_digest(value.strip())
            if any(hmac.compare_digest(digest, known) for known in self.token_digests):
                return "token:" + digest[:8]
        return None

    @functools.cached_property
    def _decoy(self) -> str:
        # A hash as costly as the users' own (the first hashed one), checked for unknown names.
        hashed = [stored for stored in self.users.values() if stored.startswith(_ALGORITHM + "$")]
        return hashed[0] if hashed else "x"


#: Longest ``Authorization`` header considered; longer ones are refused unread.
MAX_AUTHORIZATION = 8192

_remembered: dict[tuple[str, str, str], None] = {}
_REMEMBERED_MAX = 1024


def _verified(name: str, password: str, stored: str) -> bool:
    # PBKDF2 is slow on purpose; a client logging 1,000 files sends the same header
    # 1,000 times, so successful checks are remembered. Failures never are: an attacker's
    # guesses must not fill memory, nor be answered faster the second time.
    key = (name, password, stored)
    if key in _remembered:
        return True
    if not verify_password(password, stored):
        return False
    if len(_remembered) >= _REMEMBERED_MAX:
        _remembered.pop(next(iter(_remembered)))
    _remembered[key] = None
    return True


_UNAUTHENTICATED = (
    b'{"error_code": "UNAUTHENTICATED", "message": "You are not authenticated: '
    b'send HTTP Basic credentials or a bearer token."}'
)


class AuthMiddleware:
    """Refuses requests without valid credentials (401, MLflow's error JSON)."""

    def __init__(self, app: ASGIApp, credentials: Credentials, exempt: tuple[str, ...] = ()) -> None:
        self.app = app
        self.credentials = credentials
        self.exempt = exempt

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self.exempt:
            await self.app(scope, receive, send)
            return
        header = None
        for key, value in scope["headers"]:
            if key == b"authorization":
                header = value.decode("latin-1")
                break
        # Off the event loop: PBKDF2 takes ~0.1 s, and other requests must not wait for it.
        principal = await anyio.to_thread.run_sync(self.credentials.authenticate, header)
        if principal is None:
            body = _UNAUTHENTICATED
            await send(
                {
                    "type": "http.response.start",
                    "status": 401,
                    "headers": [
                        (b"content-type", b"application/json"),
                        (b"content-length", str(len(body)).encode()),
                        (b"www-authenticate", b'Basic realm="mlartifacts"'),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": body})
            return
        scope["user"] = principal
        await self.app(scope, receive, send)
