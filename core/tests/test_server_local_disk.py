"""Uploads into a local directory: a body that does not match its announced digest replaces nothing."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from mlartifacts.server import ServerConfig, create_app
from mlartifacts.testing.contract import random_bytes

from .conftest import API, serve_app

MiB = 1024 * 1024


@pytest.fixture
def service(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    destination = tmp_path / "dest"
    destination.mkdir()
    with serve_app(create_app(ServerConfig(artifacts_destination=str(destination)))) as url:
        yield url + API, destination


def field(data: bytes) -> str:
    return "sha-256=:" + base64.b64encode(hashlib.sha256(data).digest()).decode() + ":"


def test_a_streamed_body_that_does_not_match_replaces_nothing(service: tuple[str, Path]) -> None:
    """A mismatch fails the write before the rename; the old file stays."""
    url, destination = service
    old, new = random_bytes(3 * MiB, seed=3), random_bytes(4 * MiB, seed=4)
    assert requests.put(f"{url}/run/a.bin", data=old, timeout=60).ok
    wrong = field(new[:-1] + bytes([new[-1] ^ 1]))
    response = requests.put(f"{url}/run/a.bin", data=new, headers={"Content-Digest": wrong}, timeout=60)
    assert response.status_code == 400
    assert "Content-Digest" in response.json()["message"]
    assert str(destination) not in response.text
    assert (destination / "run" / "a.bin").read_bytes() == old
    assert sorted(p.name for p in (destination / "run").iterdir() if not p.name.startswith(".")) == ["a.bin"]
