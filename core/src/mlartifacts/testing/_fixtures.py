"""What every contract test class shares: test data helpers and the fixtures.

Kept apart from the test classes in :mod:`mlartifacts.testing.contract`, which
re-exports all of it (plugin authors import from there).
"""

from __future__ import annotations

import hashlib
import random
import threading
from pathlib import Path
from typing import Any, Iterator

import pytest

from .. import ArtifactStore, PluginRegistry, Settings, default_registry
from .._types import MiB
from ..paths import DIGEST_PREFIX

__all__ = ["ContractFixtures", "random_bytes", "read_tree", "write_tree"]


def random_bytes(size: int, seed: int = 0) -> bytes:
    """Deterministic pseudo-random bytes (incompressible, cheap to make)."""
    return random.Random(seed).randbytes(size)


def write_tree(root: Path, files: dict[str, bytes]) -> Path:
    """Create ``files`` (relative POSIX path -> content) below ``root``."""
    for rel, data in files.items():
        target = root.joinpath(*rel.split("/"))
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    return root


def read_tree(root: Path) -> dict[str, bytes]:
    """Every file below ``root`` as relative POSIX path -> content (digest sidecars left out)."""
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and not p.name.startswith(DIGEST_PREFIX)
    }


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


class ContractFixtures:
    """Fixtures shared by every contract test class."""

    #: Set False (with a comment saying why) if the storage cannot hold non-ASCII names.
    unicode_names = True

    @pytest.fixture
    def artifact_uri(self) -> str:
        pytest.fail("the conformance class must provide an 'artifact_uri' fixture (a fresh, empty root)")

    @pytest.fixture
    def registry(self) -> PluginRegistry:
        return default_registry()

    @pytest.fixture
    def settings(self) -> Settings:
        # Defaults, not the environment, so a developer's MLARTIFACTS_* cannot change
        # what the suite exercises; quick retries keep failure tests fast.
        return Settings(retry_backoff=0.01, retry_backoff_max=0.1)

    @pytest.fixture
    def large_file_size(self) -> int:
        return 64 * MiB

    @pytest.fixture
    def store(
        self, artifact_uri: str, registry: PluginRegistry, settings: Settings
    ) -> Iterator[ArtifactStore]:
        with ArtifactStore(artifact_uri, settings=settings, registry=registry) as store:
            yield store

    @pytest.fixture
    def hook_calls(self, registry: PluginRegistry) -> Iterator[list[str]]:
        """Names of the hooks called while the test runs (through pluggy's monitoring)."""
        calls: list[str] = []
        lock = threading.Lock()

        def before(hook_name: str, hook_impls: Any, kwargs: Any) -> None:
            with lock:
                calls.append(hook_name)

        undo = registry.pm.add_hookcall_monitoring(before, lambda *args: None)
        try:
            yield calls
        finally:
            undo()

    @pytest.fixture
    def part_size(self, store: ArtifactStore, settings: Settings) -> int:
        """The part size the engine uses for a multipart-sized file here."""
        limits = store.multipart_limits
        return limits.min_part_size if limits is not None else settings.multipart_chunksize

    @pytest.fixture
    def multipart_store(
        self, artifact_uri: str, registry: PluginRegistry, settings: Settings, part_size: int
    ) -> Iterator[ArtifactStore]:
        """A store whose engine splits anything above one (minimum-size) part."""
        tuned = settings.replace(multipart_threshold=part_size, multipart_chunksize=part_size)
        with ArtifactStore(artifact_uri, settings=tuned, registry=registry) as store:
            yield store
