"""The S3 backend passes the whole contract suite against a real SeaweedFS."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from mlartifacts.testing.contract import ArtifactStoreContract

ROOT_BUCKET = "bucket-root-tests"


class TestS3(ArtifactStoreContract):
    """A root below a prefix of the shared test bucket, fresh for each test."""

    @pytest.fixture
    def artifact_uri(self, s3_env: Any) -> str:
        return f"s3://{s3_env.bucket}/contract/{uuid.uuid4().hex}"


@pytest.fixture(scope="session")
def root_bucket(seaweedfs: Any) -> str:
    # Making a bucket costs SeaweedFS over a second: one for the class, emptied per test.
    seaweedfs.client().create_bucket(Bucket=ROOT_BUCKET)
    return ROOT_BUCKET


class TestS3BucketRoot(ArtifactStoreContract):
    """The same suite with the root at a bucket's top level (no prefix at all)."""

    @pytest.fixture
    def artifact_uri(self, s3_env: Any, root_bucket: str) -> str:
        s3_env.empty_bucket(root_bucket)
        return f"s3://{root_bucket}"
