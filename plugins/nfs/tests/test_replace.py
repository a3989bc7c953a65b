"""A write over a large file frees the old file's blocks on a background thread, not in the write."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

import mlartifacts_nfs
from mlartifacts import ArtifactStore

MiB = 1024 * 1024


def _open_inodes() -> set[int]:
    """Inodes of the files this process holds open."""
    found = set()
    for name in os.listdir("/proc/self/fd"):
        try:
            found.add(os.stat(f"/proc/self/fd/{name}").st_ino)
        except OSError:
            continue
    return found


def test_the_replaced_large_file_is_closed_on_the_background_thread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    handed: list[tuple[int, int]] = []  # (inode, links) of each descriptor handed to the closer
    real = mlartifacts_nfs._close_beside

    def spy(fd: int) -> None:
        info = os.fstat(fd)
        handed.append((info.st_ino, info.st_nlink))
        real(fd)

    monkeypatch.setattr(mlartifacts_nfs, "_close_beside", spy)
    with ArtifactStore(str(tmp_path)) as store:
        store.write_bytes("run/model.bin", b"a" * (17 * MiB))
        old_inode = (tmp_path / "run" / "model.bin").stat().st_ino
        assert handed == []  # nothing was replaced
        store.write_bytes("run/model.bin", b"b" * (17 * MiB + 5))
        assert handed == [(old_inode, 0)]  # the old file, unlinked by the rename, still open
        assert (tmp_path / "run" / "model.bin").read_bytes() == b"b" * (17 * MiB + 5)
    deadline = time.monotonic() + 10
    while old_inode in _open_inodes() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert old_inode not in _open_inodes()  # closed: its blocks are free


def test_small_missing_and_linked_targets_are_not_held(tmp_path: Path) -> None:
    (tmp_path / "small.bin").write_bytes(b"x" * 1000)
    (tmp_path / "big.bin").write_bytes(b"\0" * (17 * MiB))
    (tmp_path / "link.bin").symlink_to(tmp_path / "big.bin")
    assert mlartifacts_nfs._hold(str(tmp_path / "small.bin")) is None
    assert mlartifacts_nfs._hold(str(tmp_path / "missing.bin")) is None
    assert mlartifacts_nfs._hold(str(tmp_path / "link.bin")) is None  # never through a link
    fd = mlartifacts_nfs._hold(str(tmp_path / "big.bin"))
    assert fd is not None
    try:
        assert os.fstat(fd).st_ino == (tmp_path / "big.bin").stat().st_ino
    finally:
        os.close(fd)
