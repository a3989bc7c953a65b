"""The template path store passes the contract suite, registered without being installed."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from mlartifacts import ArtifactStore, PluginRegistry
from mlartifacts.testing.contract import ArtifactStoreContract, Corrupt, flip_byte_in_place

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
from mlartifacts_template import paths


class TestTemplatePaths(ArtifactStoreContract):
    @pytest.fixture
    def registry(self) -> PluginRegistry:
        # A fresh registry holding only this plugin: no installation needed.
        registry = PluginRegistry(autoload=False)
        registry.register(paths.plugin, "template-paths")
        return registry

    @pytest.fixture
    def artifact_uri(self, tmp_path: Path) -> str:
        return (tmp_path / "store").as_uri().replace("file:", "template-paths:", 1)

    @pytest.fixture
    def corrupt(self) -> Corrupt:
        def flip(store: ArtifactStore, path: str) -> None:
            flip_byte_in_place(store.backend.root.path(path))  # a directory on this disk

        return flip
