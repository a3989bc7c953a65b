"""The template path store passes the contract suite, registered without being installed."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from mlartifacts import PluginRegistry
from mlartifacts.testing.contract import ArtifactStoreContract

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
