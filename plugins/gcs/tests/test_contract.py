"""The GCS backend passes the whole contract suite against a real fake-gcs-server."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from mlartifacts import ArtifactStore
from mlartifacts.testing.contract import ArtifactStoreContract

ROOT_BUCKET = "bucket-root-tests"  # made by the session's fake_gcs fixture


def flip(store: ArtifactStore, path: str) -> None:
    """Rewrite an object with one byte flipped and its metadata as it was, through the SDK directly."""
    root = store.backend.root
    old = root.handle.get_blob(root.key(path))
    data = bytearray(old.download_as_bytes())
    data[len(data) // 2] ^= 0xFF
    new = root.handle.blob(root.key(path))
    new.metadata = old.metadata
    new.upload_from_string(bytes(data))


class TestGCS(ArtifactStoreContract):
    """A root below a prefix of the shared test bucket, fresh for each test."""

    @pytest.fixture
    def corrupt(self) -> Any:
        return flip

    @pytest.fixture
    def artifact_uri(self, gcs_env: Any) -> str:
        return f"gs://{gcs_env.bucket}/contract/{uuid.uuid4().hex}"


class TestGCSBucketRoot(ArtifactStoreContract):
    """The same suite with the root at a bucket's top level (no prefix at all)."""

    @pytest.fixture
    def corrupt(self) -> Any:
        return flip

    @pytest.fixture
    def artifact_uri(self, gcs_env: Any) -> str:
        gcs_env.empty_bucket(ROOT_BUCKET)
        return f"gs://{ROOT_BUCKET}"
