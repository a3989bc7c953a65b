"""The in-memory reference backend passes the contract suite (with small parts, and without multipart)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from mlartifacts import ArtifactStore, MultipartLimits, PluginRegistry
from mlartifacts.testing import MemoryBackend
from mlartifacts.testing.contract import ArtifactStoreContract, Corrupt


def flip(store: ArtifactStore, path: str) -> None:
    """Flip a byte of a memory object, leaving its recorded digest as it was."""
    backend, root = store.backend.handle.plugin, store.backend.root
    assert isinstance(backend, MemoryBackend)
    backend.corrupt_stored(root.bucket, root.key(path), offset=1)


class TestMemory(ArtifactStoreContract):
    """The backend the entry point registers: S3's limits (5 MiB minimum part)."""

    @pytest.fixture
    def corrupt(self) -> Corrupt:
        return flip

    @pytest.fixture
    def artifact_uri(self) -> str:
        return f"memory://contract/{uuid.uuid4().hex}"


class TestMemorySmallParts(ArtifactStoreContract):
    """A private instance, registered in a fresh registry, with 64 KiB parts."""

    @pytest.fixture
    def corrupt(self) -> Corrupt:
        return flip

    @pytest.fixture
    def registry(self) -> Iterator[PluginRegistry]:
        registry = PluginRegistry(autoload=False)
        registry.register(MemoryBackend(MultipartLimits(64 * 1024, 1 << 30, 10_000)), "memory")
        return registry

    @pytest.fixture
    def artifact_uri(self) -> str:
        return "memory://bucket/root"


class TestMemoryWithoutMultipart(ArtifactStoreContract):
    @pytest.fixture
    def corrupt(self) -> Corrupt:
        return flip

    @pytest.fixture
    def registry(self) -> Iterator[PluginRegistry]:
        registry = PluginRegistry(autoload=False)
        registry.register(MemoryBackend(limits=None), "memory")
        return registry

    @pytest.fixture
    def artifact_uri(self) -> str:
        return "memory://bucket"
