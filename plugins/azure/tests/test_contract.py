"""The Azure backend passes the whole contract suite against a real Azurite, under both kinds of key auth."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from mlartifacts import ArtifactStore
from mlartifacts.testing.contract import ArtifactStoreContract


def flip(store: ArtifactStore, path: str) -> None:
    """Rewrite a blob with one byte flipped and its metadata as it was, through the SDK directly."""
    root = store.backend.root
    blob = root.blob(root.name(path))
    got = blob.download_blob()
    data = bytearray(got.readall())
    data[len(data) // 2] ^= 0xFF
    blob.upload_blob(bytes(data), overwrite=True, metadata=got.properties.metadata)


class TestAzureConnectionString(ArtifactStoreContract):
    @pytest.fixture
    def corrupt(self) -> Any:
        return flip

    """AZURE_STORAGE_CONNECTION_STRING; a root below a prefix of the test container, fresh per test."""

    @pytest.fixture
    def artifact_uri(self, cs_env: Any) -> str:
        return str(cs_env.uri(f"contract/{uuid.uuid4().hex}"))


class TestAzureAccountKey(ArtifactStoreContract):
    @pytest.fixture
    def corrupt(self) -> Any:
        return flip

    """AZURE_STORAGE_ACCESS_KEY with MLARTIFACTS_AZURE_BLOB_ENDPOINT; a root at a fresh container's top."""

    @pytest.fixture
    def artifact_uri(self, key_env: Any) -> str:
        container = f"c{uuid.uuid4().hex[:20]}"
        key_env.admin().create_container(container)
        return str(key_env.uri(container=container))
