"""The in-memory reference backend passes the contract suite (with small parts, and without multipart)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from mlartifacts import MultipartLimits, PluginRegistry
from mlartifacts.testing import MemoryBackend
from mlartifacts.testing.contract import ArtifactStoreContract


class TestMemory(ArtifactStoreContract):
    """The backend the entry point registers: S3's limits (5 MiB minimum part)."""

    @pytest.fixture
    def artifact_uri(self) -> str:
        return f"memory://contract/{uuid.uuid4().hex}"


class TestMemorySmallParts(ArtifactStoreContract):
    """A private instance, registered in a fresh registry, with 64 KiB parts."""

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
    def registry(self) -> Iterator[PluginRegistry]:
        registry = PluginRegistry(autoload=False)
        registry.register(MemoryBackend(limits=None), "memory")
        return registry

    @pytest.fixture
    def artifact_uri(self) -> str:
        return "memory://bucket"
