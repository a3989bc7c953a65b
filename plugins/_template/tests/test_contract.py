"""The template backend passes the contract suite, registered without being installed."""

from __future__ import annotations

import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from mlartifacts import ArtifactStore, PluginRegistry
from mlartifacts.testing.contract import ArtifactStoreContract, Corrupt

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
import mlartifacts_template


class TestTemplate(ArtifactStoreContract):
    @pytest.fixture
    def registry(self) -> Iterator[PluginRegistry]:
        # A fresh registry holding only this plugin: no installation needed.
        registry = PluginRegistry(autoload=False)
        registry.register(mlartifacts_template, "template")
        return registry

    @pytest.fixture
    def artifact_uri(self) -> str:
        return f"template://bucket-{uuid.uuid4().hex}/some/prefix"

    @pytest.fixture
    def corrupt(self) -> Corrupt:
        def flip(store: ArtifactStore, path: str) -> None:  # in the "storage", its digest as it was
            root = store.backend.root
            data = bytearray(mlartifacts_template._BUCKETS[root.bucket][root.key(path)])
            data[len(data) // 2] ^= 0xFF
            mlartifacts_template._BUCKETS[root.bucket][root.key(path)] = bytes(data)

        return flip
