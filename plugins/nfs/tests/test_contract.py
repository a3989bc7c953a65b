"""The nfs backend passes the whole contract suite, on plain paths and on file: URIs."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from mlartifacts import ArtifactStore
from mlartifacts.testing.contract import ArtifactStoreContract, Corrupt


def flip(store: ArtifactStore, path: str) -> None:
    """Flip a byte on disk in place, its modification time put back (as bit rot would leave it)."""
    target = store.backend.root.path(path)
    before = os.stat(target)
    with open(target, "r+b") as f:
        f.seek(before.st_size // 2)
        byte = f.read(1)
        f.seek(before.st_size // 2)
        f.write(bytes([byte[0] ^ 0xFF]))
    os.utime(target, ns=(before.st_atime_ns, before.st_mtime_ns))


class TestPlainPath(ArtifactStoreContract):
    @pytest.fixture
    def artifact_uri(self, tmp_path: Path) -> str:
        return str(tmp_path / "store")

    @pytest.fixture
    def corrupt(self) -> Corrupt:
        return flip


class TestFileUri(ArtifactStoreContract):
    @pytest.fixture
    def corrupt(self) -> Corrupt:
        return flip

    @pytest.fixture
    def artifact_uri(self, tmp_path: Path) -> str:
        return (tmp_path / "store with space").as_uri()
