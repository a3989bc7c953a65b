"""The nfs backend passes the whole contract suite, on plain paths and on file: URIs."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlartifacts import ArtifactStore
from mlartifacts.testing.contract import ArtifactStoreContract, Corrupt, flip_byte_in_place


def flip(store: ArtifactStore, path: str) -> None:
    """Flip a byte on disk in place, its modification time put back (as bit rot would leave it)."""
    flip_byte_in_place(store.backend.root.path(path))


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
