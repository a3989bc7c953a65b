"""Uploads into a local directory: the replaced file is freed after the answer; the digest checked beside."""

from __future__ import annotations

import base64
import hashlib
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from mlartifacts import ArtifactStore
from mlartifacts.server import ServerConfig, _artifacts, _local_disk, create_app
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


def test_a_replaced_large_file_is_held_then_released_after_the_write(
    service: tuple[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The old file stays open across the rename; its last close happens on the closer thread."""
    url, destination = service
    old, new = random_bytes(20 * MiB, seed=1), random_bytes(20 * MiB + 5, seed=2)
    assert requests.put(f"{url}/run/model.bin", data=old, timeout=60).ok
    old_inode = (destination / "run" / "model.bin").stat().st_ino
    handed: list[tuple[int, int]] = []  # (inode, links) of each descriptor handed to the closer

    def spy(fd: int | None) -> None:
        if fd is not None:
            info = os.fstat(fd)
            handed.append((info.st_ino, info.st_nlink))
        _local_disk.release(fd)

    monkeypatch.setattr(_artifacts, "release", spy)
    response = requests.put(
        f"{url}/run/model.bin", data=new, headers={"Content-Digest": field(new)}, timeout=60
    )
    assert (response.status_code, response.json()) == (200, {})
    assert handed == [(old_inode, 0)]  # the old file, already unlinked by the rename, still open
    assert (destination / "run" / "model.bin").read_bytes() == new
    got = requests.get(f"{url}/run/model.bin", timeout=60)
    assert got.content == new and got.headers["Repr-Digest"] == field(new)
    deadline = time.monotonic() + 10
    while _held_deleted(old_inode) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _held_deleted(old_inode)  # closed: its blocks are free


def _held_deleted(inode: int) -> bool:
    for name in os.listdir("/proc/self/fd"):
        try:
            if os.stat(f"/proc/self/fd/{name}").st_ino == inode:
                return True
        except OSError:
            continue
    return False


def test_small_missing_and_linked_targets_are_not_held(tmp_path: Path) -> None:
    (tmp_path / "small.bin").write_bytes(b"x" * 1000)
    (tmp_path / "big.bin").write_bytes(b"\0" * (17 * MiB))
    (tmp_path / "link.bin").symlink_to(tmp_path / "big.bin")
    with ArtifactStore(str(tmp_path)) as store:
        assert _local_disk.hold_replaced(store, "small.bin") is None
        assert _local_disk.hold_replaced(store, "missing.bin") is None
        assert _local_disk.hold_replaced(store, "link.bin") is None  # never through a link
        fd = _local_disk.hold_replaced(store, "big.bin")
        assert fd is not None and os.fstat(fd).st_ino == (tmp_path / "big.bin").stat().st_ino
        _local_disk.release(fd)
    with ArtifactStore("memory://bucket/x") as store:
        assert not _local_disk.is_local(store)


def test_a_streamed_body_that_does_not_match_replaces_nothing(service: tuple[str, Path]) -> None:
    """Checked beside the writer: a mismatch fails the write before the rename; the old file stays."""
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
