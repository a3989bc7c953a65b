"""The nfs backend passes the whole contract suite, on plain paths and on file: URIs."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlartifacts.testing.contract import ArtifactStoreContract


class TestPlainPath(ArtifactStoreContract):
    @pytest.fixture
    def artifact_uri(self, tmp_path: Path) -> str:
        return str(tmp_path / "store")


class TestFileUri(ArtifactStoreContract):
    @pytest.fixture
    def artifact_uri(self, tmp_path: Path) -> str:
        return (tmp_path / "store with space").as_uri()
