"""Integrity on S3 (issue 15), on SeaweedFS: digests recorded and checked, bytes changed in flight refused.

What SeaweedFS was seen to enforce: ``x-amz-checksum-sha256`` on PutObject and
``x-amz-checksum-crc32`` / ``-sha256`` on UploadPart (BadDigest when the body
differs), object tagging (the digest of a multipart object), user metadata.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
from pathlib import Path
from typing import Any, Callable

import pytest

from mlartifacts import ArtifactStore, Settings
from mlartifacts.errors import ArtifactError, IntegrityError
from mlartifacts.testing.contract import random_bytes
from mlartifacts_s3._root import DIGEST_KEY

MiB = 1024 * 1024
TUNED = Settings(retry_backoff=0.01, retry_backoff_max=0.05, max_retries=1, multipart_threshold=8 * MiB)
Recorder = Callable[..., Any]


def flipping(request: Any, **kwargs: Any) -> None:
    """Change one byte of the body after botocore computed its checksum headers."""
    body = request.body
    data = body if isinstance(body, (bytes, bytearray)) else body.read()  # a BytesIO or an open file
    request.body = io.BytesIO(bytes([data[0] ^ 0xFF]) + bytes(data[1:]))


def test_single_put_records_metadata_and_sends_its_sha256(
    unique_uri: str, tmp_path: Path, record: Recorder
) -> None:
    data = random_bytes(5000, seed=1)
    (tmp_path / "f.bin").write_bytes(data)
    digest = hashlib.sha256(data).hexdigest()
    with ArtifactStore(unique_uri, settings=TUNED) as store:
        with record(store.backend.root.client, "PutObject") as sent:
            store.upload_file(str(tmp_path / "f.bin"), "f.bin")
        assert sent[0].headers["x-amz-meta-mlartifacts-sha256"] == digest
        assert "x-amz-checksum-sha256" in sent[0].headers
        assert store.stat("f.bin").digest == digest


def test_multipart_object_carries_its_digest_as_a_tag(unique_uri: str, tmp_path: Path, s3_env: Any) -> None:
    data = random_bytes(17 * MiB, seed=2)
    (tmp_path / "big.bin").write_bytes(data)
    with ArtifactStore(unique_uri, settings=TUNED) as store:
        store.upload_file(str(tmp_path / "big.bin"), "big.bin")
        root = store.backend.root
        tags = s3_env.client().get_object_tagging(Bucket=root.bucket, Key=root.key("big.bin"))["TagSet"]
        assert tags == [{"Key": DIGEST_KEY, "Value": hashlib.sha256(data).hexdigest()}]
        assert store.stat("big.bin").digest == hashlib.sha256(data).hexdigest()


def test_user_metadata_is_kept_beside_the_digest(
    unique_uri: str, tmp_path: Path, aws_env: pytest.MonkeyPatch, s3_env: Any
) -> None:
    aws_env.setenv("MLFLOW_S3_UPLOAD_EXTRA_ARGS", '{"Metadata": {"team": "vision"}}')
    with ArtifactStore(unique_uri, settings=TUNED) as store:
        store.write_bytes("m.bin", b"model")
        root = store.backend.root
        head = s3_env.client().head_object(Bucket=root.bucket, Key=root.key("m.bin"))
        assert head["Metadata"] == {"team": "vision", DIGEST_KEY: hashlib.sha256(b"model").hexdigest()}


def test_a_part_changed_in_flight_is_refused(
    unique_uri: str, tmp_path: Path, inject: Recorder, record: Recorder
) -> None:
    (tmp_path / "big.bin").write_bytes(random_bytes(17 * MiB, seed=3))
    with ArtifactStore(unique_uri, settings=TUNED) as store:
        client = store.backend.root.client
        with (
            inject(client, "UploadPart", flipping),
            record(client, "UploadPart") as sent,
            pytest.raises(ArtifactError, match="BadDigest"),
        ):
            store.upload_file(str(tmp_path / "big.bin"), "big.bin")
        assert all("x-amz-checksum-crc32" in s.headers for s in sent)
        assert not store.exists("big.bin")
        assert list(store.backend.list_multipart_uploads("")) == []


def test_a_put_changed_in_flight_is_refused(unique_uri: str, tmp_path: Path, inject: Recorder) -> None:
    (tmp_path / "f.bin").write_bytes(random_bytes(3000, seed=4))
    with ArtifactStore(unique_uri, settings=TUNED) as store:
        with (
            inject(store.backend.root.client, "PutObject", flipping),
            pytest.raises(ArtifactError, match="BadDigest"),
        ):
            store.upload_file(str(tmp_path / "f.bin"), "f.bin")
        assert not store.exists("f.bin")


def test_each_part_carries_the_crc32_the_engine_journaled(
    unique_uri: str, tmp_path: Path, record: Recorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    # One CRC-32 pass per part: the engine's (kept in its resume journal) is the one S3 checks.
    import base64
    import zlib

    from botocore import httpchecksum

    computed_by_botocore: list[int] = []
    original = httpchecksum.Crc32Checksum.update

    def counting(self: Any, chunk: bytes) -> None:
        computed_by_botocore.append(len(chunk))
        original(self, chunk)

    monkeypatch.setattr(httpchecksum.Crc32Checksum, "update", counting)
    data = random_bytes(17 * MiB, seed=5)
    (tmp_path / "big.bin").write_bytes(data)
    part = 8 * MiB  # the default part size
    expected = [
        base64.b64encode(zlib.crc32(data[o : o + part]).to_bytes(4, "big")).decode()
        for o in range(0, len(data), part)
    ]
    with ArtifactStore(unique_uri, settings=TUNED) as store:
        with record(store.backend.root.client, "UploadPart") as sent:
            store.upload_file(str(tmp_path / "big.bin"), "big.bin")
        assert store.read_bytes("big.bin") == data
    assert sorted(s.headers["x-amz-checksum-crc32"] for s in sent) == sorted(expected)
    # (PutObjectTagging's small XML body, which requires a checksum, is botocore's to sum.)
    assert [n for n in computed_by_botocore if n >= MiB] == []


@pytest.mark.parametrize("fast", [True, False], ids=["obstore", "boto3"])
def test_a_batch_member_changed_in_storage_is_refused(
    unique_uri: str, tmp_path: Path, s3_env: Any, record: Recorder, fast: bool
) -> None:
    """Small files come down in batches, which a listing cannot check: each GET's recorded digest is."""
    files = {f"m{i}.bin": random_bytes(2000 + i, seed=40 + i) for i in range(6)}
    with ArtifactStore(unique_uri, settings=TUNED) as store:
        for name, data in files.items():
            store.write_bytes(f"tree/{name}", data)
        root = store.backend.root
        admin, key = s3_env.client(), root.key("tree/m3.bin")
        got = admin.get_object(Bucket=root.bucket, Key=key)
        flipped = bytearray(got["Body"].read())
        flipped[7] ^= 0xFF
        admin.put_object(Bucket=root.bucket, Key=key, Body=bytes(flipped), Metadata=got["Metadata"])
        with ArtifactStore(unique_uri, settings=TUNED) as checked:
            client = checked.backend.root.client
            watching = record(client, "GetObject") if not fast else contextlib.nullcontext([])
            with watching as gets, pytest.raises(IntegrityError, match=r"m3\.bin") as caught:
                checked.download_tree("tree", str(tmp_path / "down"))
            assert hashlib.sha256(files["m3.bin"]).hexdigest() in str(caught.value)
            assert fast or gets  # watching GetObject sends the batch through boto3
    assert not (tmp_path / "down" / "m3.bin").exists()
