"""The GCS backend passes the whole contract suite against a real fake-gcs-server."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from mlartifacts.testing.contract import ArtifactStoreContract

ROOT_BUCKET = "bucket-root-tests"  # made by the session's fake_gcs fixture


class TestGCS(ArtifactStoreContract):
    """A root below a prefix of the shared test bucket, fresh for each test."""

    @pytest.fixture
    def artifact_uri(self, gcs_env: Any) -> str:
        return f"gs://{gcs_env.bucket}/contract/{uuid.uuid4().hex}"


class TestGCSBucketRoot(ArtifactStoreContract):
    """The same suite with the root at a bucket's top level (no prefix at all)."""

    @pytest.fixture
    def artifact_uri(self, gcs_env: Any) -> str:
        gcs_env.empty_bucket(ROOT_BUCKET)
        return f"gs://{ROOT_BUCKET}"
