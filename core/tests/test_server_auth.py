"""Authentication's defences: no user enumeration by timing, no event-loop stalls, no memory for failures."""

from __future__ import annotations

import asyncio
import base64
import threading
from typing import Any

import pytest

from mlartifacts.server import _auth
from mlartifacts.server._auth import AuthMiddleware, Credentials, hash_password


def basic(name: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{name}:{password}".encode()).decode()


@pytest.fixture
def credentials() -> Credentials:
    _auth._remembered.clear()
    return Credentials({"alice": hash_password("wonderland", iterations=1000)}, frozenset())


@pytest.fixture
def checks(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The stored values each password check ran against."""
    seen: list[str] = []
    real = _auth.verify_password

    def counting(password: str, stored: str) -> bool:
        seen.append(stored)
        return real(password, stored)

    monkeypatch.setattr(_auth, "verify_password", counting)
    return seen


def test_an_unknown_user_costs_as_much_as_a_wrong_password(
    credentials: Credentials, checks: list[str]
) -> None:
    assert credentials.authenticate(basic("mallory", "guess")) is None
    assert credentials.authenticate(basic("alice", "guess")) is None
    # Both ran one PBKDF2 check of the same cost (the unknown name against a real user's hash).
    assert checks == [credentials.users["alice"], credentials.users["alice"]]


def test_failures_are_not_remembered_and_successes_are(credentials: Credentials, checks: list[str]) -> None:
    for _ in range(3):
        assert credentials.authenticate(basic("alice", "wrong")) is None
    assert len(checks) == 3 and _auth._remembered == {}
    for _ in range(3):
        assert credentials.authenticate(basic("alice", "wonderland")) == "alice"
    assert len(checks) == 4  # one slow check, then remembered


def test_oversized_headers_are_refused_unread(credentials: Credentials, checks: list[str]) -> None:
    assert credentials.authenticate(basic("alice", "p" * 10_000)) is None
    assert checks == []


def test_passwords_are_checked_off_the_event_loop(credentials: Credentials) -> None:
    threads: list[threading.Thread] = []

    class Recording(Credentials):
        def authenticate(self, authorization: str | None) -> str | None:
            threads.append(threading.current_thread())
            return super().authenticate(authorization)

    recording = Recording(credentials.users, credentials.token_digests)
    reached: list[str] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        reached.append(scope["user"])

    async def call() -> None:
        scope = {
            "type": "http",
            "path": "/x",
            "headers": [(b"authorization", basic("alice", "wonderland").encode())],
        }
        await AuthMiddleware(app, recording)(scope, None, None)  # type: ignore[arg-type]

    asyncio.run(call())
    assert reached == ["alice"]
    assert threads and threads[0] is not threading.main_thread()
