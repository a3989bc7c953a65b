"""Digests through the artifacts service (issue 15): Repr-Digest and ETag out, Content-Digest in."""

from __future__ import annotations

import base64
import hashlib
import io
import os
import tarfile
import uuid
from pathlib import Path

import pytest
import requests

from mlartifacts import ArtifactStore
from mlartifacts.errors import IntegrityError
from mlartifacts.testing.contract import random_bytes

from .conftest import RunningServer


@pytest.fixture
def run() -> str:
    return f"1/{uuid.uuid4().hex}/artifacts"


def field(data: bytes) -> str:
    return "sha-256=:" + base64.b64encode(hashlib.sha256(data).digest()).decode() + ":"


@pytest.mark.parametrize("size", [1000, 3_000_001], ids=["small", "streamed"])
def test_get_and_head_send_repr_digest_and_a_strong_etag(server: RunningServer, run: str, size: int) -> None:
    data = random_bytes(size)
    assert requests.put(f"{server.artifacts}/{run}/f.bin", data=data, timeout=30).ok
    for method in ("GET", "HEAD"):
        response = requests.request(method, f"{server.artifacts}/{run}/f.bin", timeout=30)
        assert response.status_code == 200
        assert response.headers["Repr-Digest"] == field(data)
        assert response.headers["ETag"] == f'"sha256-{hashlib.sha256(data).hexdigest()}"'
    ranged = requests.get(f"{server.artifacts}/{run}/f.bin", headers={"Range": "bytes=10-19"}, timeout=30)
    assert ranged.status_code == 206
    assert ranged.content == data[10:20]
    assert ranged.headers["Repr-Digest"] == field(data)  # of the whole file, as RFC 9530 says


@pytest.mark.parametrize("header", ["Content-Digest", "Repr-Digest"])
@pytest.mark.parametrize("size", [1000, 3_000_001], ids=["small", "streamed"])
def test_put_with_a_matching_digest_is_stored(
    server: RunningServer, run: str, header: str, size: int
) -> None:
    data = random_bytes(size, seed=1)
    response = requests.put(
        f"{server.artifacts}/{run}/ok.bin", data=data, headers={header: field(data)}, timeout=30
    )
    assert (response.status_code, response.json()) == (200, {})
    assert (server.destination / run / "ok.bin").read_bytes() == data  # type: ignore[operator]


@pytest.mark.parametrize("size", [1000, 3_000_001], ids=["small", "streamed"])
def test_put_whose_body_does_not_match_is_refused_and_nothing_is_visible(
    server: RunningServer, run: str, size: int
) -> None:
    data = random_bytes(size, seed=2)
    wrong = field(data[:-1] + bytes([data[-1] ^ 1]))
    response = requests.put(
        f"{server.artifacts}/{run}/bad.bin",
        data=data,
        headers={"Content-Digest": f"sha-512=:AAAA:, {wrong}"},  # other algorithms are ignored
        timeout=30,
    )
    assert response.status_code == 400
    body = response.json()
    assert body["error_code"] == "INVALID_PARAMETER_VALUE"
    assert "Content-Digest" in body["message"]
    assert requests.get(f"{server.artifacts}/{run}/bad.bin", timeout=10).status_code == 404
    assert not (server.destination / run).exists() or list((server.destination / run).iterdir()) == []  # type: ignore[operator]


def test_a_malformed_digest_is_a_400(server: RunningServer, run: str) -> None:
    response = requests.put(
        f"{server.artifacts}/{run}/m.bin", data=b"x", headers={"Content-Digest": "sha-256=:nope:"}, timeout=10
    )
    assert response.status_code == 400
    assert response.json()["error_code"] == "INVALID_PARAMETER_VALUE"


def tar_of(members: list[tuple[str, bytes, str | None]]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data, digest in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            if digest is not None:
                info.pax_headers = {"MLARTIFACTS.sha256": digest}
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def test_batch_members_carry_a_digest_each(server: RunningServer, run: str) -> None:
    good, bad = b"good bytes", b"bad bytes"
    body = tar_of(
        [
            ("a.txt", good, hashlib.sha256(good).hexdigest()),
            ("b.txt", bad, hashlib.sha256(b"other").hexdigest()),
        ]
    )
    url = f"{server.url}/api/2.0/mlflow-artifacts/batch/upload/{run}"
    response = requests.post(url, data=body, headers={"Content-Type": "application/x-tar"}, timeout=30)
    assert response.status_code == 400
    assert "b.txt" in response.json()["message"]
    assert requests.get(f"{server.artifacts}/{run}/b.txt", timeout=10).status_code == 404
    # A member's digest comes back in the batch download, and our client checks it.
    with ArtifactStore(f"{server.url}/api/2.0/mlflow-artifacts/artifacts/{run}") as store:
        store.write_bytes("c.txt", good)
        assert store.stat("c.txt").digest == hashlib.sha256(good).hexdigest()


def test_our_client_sends_digests_and_checks_them(server: RunningServer, run: str, tmp_path: Path) -> None:
    data = random_bytes(50_000, seed=3)
    (tmp_path / "up.bin").write_bytes(data)
    with ArtifactStore(f"{server.url}/api/2.0/mlflow-artifacts/artifacts/{run}") as store:
        store.upload_file(str(tmp_path / "up.bin"), "up.bin")
        assert store.stat("up.bin").digest == hashlib.sha256(data).hexdigest()
        assert [e.digest for e in store.list_artifacts()] == [hashlib.sha256(data).hexdigest()]
        # The stored file changes behind the service's back (its sidecar left as it was).
        stored = server.destination / run / "up.bin"  # type: ignore[operator]
        stat = stored.stat()
        flipped = bytearray(stored.read_bytes())
        flipped[7] ^= 0xFF
        stored.write_bytes(bytes(flipped))
        os.utime(stored, ns=(stat.st_atime_ns, stat.st_mtime_ns))
        settings = store.engine.settings.replace(max_retries=0)
        with (
            ArtifactStore(store.uri, settings=settings) as checked,
            pytest.raises(IntegrityError, match="SHA-256"),
        ):
            checked.download_file("up.bin", str(tmp_path / "down.bin"))
        assert not (tmp_path / "down.bin").exists()
