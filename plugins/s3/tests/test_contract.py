"""The S3 backend passes the whole contract suite against a real SeaweedFS."""

from __future__ import annotations

import urllib.parse
import uuid
from typing import Any

import pytest

from mlartifacts import ArtifactStore
from mlartifacts.testing.contract import ArtifactStoreContract, Corrupt

ROOT_BUCKET = "bucket-root-tests"


def corrupter(seaweedfs: Any) -> Corrupt:
    """Rewrite an object with one byte flipped, its metadata and tags as they were (the admin's client)."""

    def flip(store: ArtifactStore, path: str) -> None:
        root = store.backend.root
        admin, key = seaweedfs.client(), root.key(path)
        got = admin.get_object(Bucket=root.bucket, Key=key)
        data = bytearray(got["Body"].read())
        data[len(data) // 2] ^= 0xFF
        tags = admin.get_object_tagging(Bucket=root.bucket, Key=key)["TagSet"]
        admin.put_object(
            Bucket=root.bucket,
            Key=key,
            Body=bytes(data),
            Metadata=got["Metadata"],
            Tagging=urllib.parse.urlencode({t["Key"]: t["Value"] for t in tags}),
        )

    return flip


class TestS3(ArtifactStoreContract):
    """A root below a prefix of the shared test bucket, fresh for each test."""

    # ListObjectsV2 returns neither metadata nor tags: stat (and downloads) have the digest.
    digests_in_listings = False

    @pytest.fixture
    def corrupt(self, seaweedfs: Any) -> Corrupt:
        return corrupter(seaweedfs)

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

    digests_in_listings = False

    @pytest.fixture
    def corrupt(self, seaweedfs: Any) -> Corrupt:
        return corrupter(seaweedfs)

    @pytest.fixture
    def artifact_uri(self, s3_env: Any, root_bucket: str) -> str:
        s3_env.empty_bucket(root_bucket)
        return f"s3://{root_bucket}"
