"""Recursive listings and reads over obstore (``_objects._list_fast``, ``_read_fast``), against SeaweedFS.

What they must keep: exactly the entries and bytes boto3 gives (a directory marker
is not a file, a range past the end is empty) and boto3's errors, boto3 taking over
wherever obstore cannot say the same. Requests someone watches through botocore's
events stay on boto3 (test_s3, test_settings and test_sync record them).
"""

from __future__ import annotations

from typing import Any

import pytest

from mlartifacts import ArtifactStore
from mlartifacts.errors import NotFound
from mlartifacts.testing.contract import random_bytes
from mlartifacts_s3 import _objects
from mlartifacts_s3._fast import fast_store


def _spy(monkeypatch: pytest.MonkeyPatch, name: str) -> list[Any]:
    """Calls of ``_objects.<name>`` from now on: (args, result)."""
    seen: list[Any] = []
    original = getattr(_objects, name)

    def spy(*args: Any, **kwargs: Any) -> Any:
        result = original(*args, **kwargs)
        seen.append((args, kwargs, result))
        return result

    monkeypatch.setattr(_objects, name, spy)
    return seen


def _put(s3_env: Any, root: Any, names: dict[str, bytes]) -> None:
    admin = s3_env.client()
    for name, data in names.items():
        admin.put_object(Bucket=root.bucket, Key=root.key(name), Body=data)


def test_recursive_listing_through_obstore_is_boto3s(
    unique_uri: str, s3_env: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    names = {f"tree/d{i % 3}/f{i:02}.bin": random_bytes(10 + i, seed=i) for i in range(25)}
    with ArtifactStore(unique_uri) as store:
        root = store.backend.root
        _put(s3_env, root, names)
        assert fast_store(root, "ListObjectsV2") is not None
        by_boto3 = list(_objects._list_boto3(root, root.key("tree") + "/", True))
        took_over = _spy(monkeypatch, "_list_boto3")
        listed = list(store.iter_files("tree"))
    assert not took_over  # obstore listed every key
    assert listed == by_boto3
    assert sorted((e.path, e.file_size) for e in listed) == sorted((n, len(d)) for n, d in names.items())
    assert all(e.etag and e.modified for e in listed)


def test_directory_markers_and_empty_files_are_listed_by_boto3(
    unique_uri: str, s3_env: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # obstore names the marker "tree/b/" as an empty object "tree/b": boto3 lists from the
    # last key obstore gave, and skips the marker as always.
    names = {"tree/a.bin": b"a", "tree/b/": b"", "tree/b/c.bin": b"c", "tree/d.bin": b"d", "tree/e": b""}
    with ArtifactStore(unique_uri) as store:
        root = store.backend.root
        _put(s3_env, root, names)
        took_over = _spy(monkeypatch, "_list_boto3")
        listed = list(store.iter_files("tree"))
    assert [(e.path, e.file_size) for e in listed] == [
        ("tree/a.bin", 1),
        ("tree/b/c.bin", 1),
        ("tree/d.bin", 1),
        ("tree/e", 0),
    ]
    assert [call[1].get("start_after") for call in took_over] == [root.key("tree/a.bin")]


def test_listing_a_missing_bucket_raises_boto3s_error(seaweedfs: Any, s3_env: Any) -> None:
    with (
        ArtifactStore(f"s3://no-such-bucket-{id(seaweedfs)}/x") as store,
        pytest.raises(NotFound, match="no-such-bucket"),
    ):
        list(store.iter_files())


def test_reads_through_obstore(unique_uri: str, s3_env: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    data = random_bytes(3 * 1024 * 1024 + 5, seed=7)
    with ArtifactStore(unique_uri) as store:
        store.write_bytes("blob.bin", data)
        fast = _spy(monkeypatch, "_read_fast")
        assert b"".join(store.backend.read("blob.bin", 0, None)) == data
        assert b"".join(store.backend.read("blob.bin", 1000, 2_000_000)) == data[1000:2_001_000]
        assert b"".join(store.backend.read("blob.bin", len(data) - 5, 100)) == data[-5:]
        assert all(isinstance(c, bytes) for c in store.backend.read("blob.bin", 10, 5000))
        served = [result is not None for _, _, result in fast]
        assert served == [True] * 4
        # Past the end: nothing, as through boto3 (obstore refuses; boto3 answers).
        assert list(store.backend.read("blob.bin", len(data) + 10, 5)) == []
        assert fast[-1][2] is None
        with pytest.raises(NotFound):
            list(store.backend.read("missing.bin", 0, None))


def test_large_download_in_ranges_through_obstore(
    unique_uri: str, s3_env: Any, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mlartifacts import Settings

    settings = Settings(ranged_download_threshold=2 * 1024 * 1024, ranged_download_chunksize=1024 * 1024)
    data = random_bytes(5 * 1024 * 1024 + 3, seed=9)
    (tmp_path / "big.bin").write_bytes(data)
    with ArtifactStore(unique_uri, settings=settings) as store:
        store.log_artifact(str(tmp_path / "big.bin"))
        fast = _spy(monkeypatch, "_read_fast")
        local = store.download_artifacts("big.bin", str(tmp_path / "dst"))
    assert len(fast) == 6 and all(result is not None for _, _, result in fast)
    with open(local, "rb") as f:
        assert f.read() == data
