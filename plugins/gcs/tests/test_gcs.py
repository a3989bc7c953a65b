"""GCS behaviour beyond the contract, against the session's fake-gcs-server.

The emulator does not check tokens or signatures, has no XML multipart API and no
JSON batch API, ignores ``match_glob`` and does not count prefixes toward
``maxResults``: what depends on those is not proven here (see the README).
Everything else below runs for real: composite uploads, their cleanup, listing
pages, CRC32C verification, credentials obtained from a real token endpoint.
"""

from __future__ import annotations

import contextlib
import time
import urllib.request
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest
import requests

from mlartifacts import ArtifactStore, Settings
from mlartifacts.errors import IntegrityError, NotFound, TransientError
from mlartifacts.gc import stale_uploads
from mlartifacts.paths import TEMP_PREFIX
from mlartifacts.testing.contract import random_bytes, write_tree
from mlartifacts_gcs._client import cached_clients
from mlartifacts_gcs._multipart import COMPOSE_FANIN

KiB, MiB = 1024, 1024 * 1024
QUICK = Settings(retry_backoff=0.01, retry_backoff_max=0.05)


@contextlib.contextmanager
def recording(
    store: ArtifactStore, fail: Callable[[str, str, bytes], bool] | None = None
) -> Iterator[list[tuple[str, str]]]:
    """Record (method, url) of every request the store's GCS client sends.

    ``fail(method, url, body)`` returning True makes that request fail as a reset connection.
    """
    session = store.backend.root.client.session
    original = session.request
    sent: list[tuple[str, str]] = []

    def request(method: str, url: str, *args: Any, **kwargs: Any) -> Any:
        sent.append((method, url))
        body = kwargs.get("data")
        if fail is not None and fail(method, url, body if isinstance(body, bytes) else b""):
            raise requests.exceptions.ConnectionError("connection reset by peer (injected)")
        return original(method, url, *args, **kwargs)

    session.request = request
    try:
        yield sent
    finally:
        del session.request  # back to the class's method


def _store(uri: str, **settings: Any) -> ArtifactStore:
    return ArtifactStore(uri, settings=QUICK.replace(**settings))


def test_composite_upload_of_more_than_three_parts(unique_uri: str, gcs_env: Any, tmp_path: Path) -> None:
    part = 256 * KiB
    data = random_bytes(part * 3 + 1234, seed=1)
    (tmp_path / "m.bin").write_bytes(data)
    with _store(unique_uri, multipart_threshold=part, multipart_chunksize=part) as store:
        with recording(store) as sent:
            store.log_artifact(str(tmp_path / "m.bin"), "models")
        uploads = [u for m, u in sent if m == "POST" and "/upload/" in u]
        composes = [u for m, u in sent if m == "POST" and u.split("?")[0].endswith("/compose")]
        assert len(uploads) == 4 and len(composes) == 1
        prefix = unique_uri.split("/", 3)[3]
        assert gcs_env.names(prefix=prefix) == [f"{prefix}/models/m.bin"]  # temporaries deleted
        info = store.stat("models/m.bin")
        assert info.file_size == len(data) and info.checksum is not None
        assert info.checksum.algorithm == "crc32c"
        assert store.read_bytes("models/m.bin") == data


def test_more_parts_than_one_compose_takes(unique_uri: str, gcs_env: Any, tmp_path: Path) -> None:
    part = 256 * KiB
    parts = COMPOSE_FANIN + 8  # two groups, then their composition: a tree of two levels
    data = random_bytes(part * parts - 5, seed=2)
    (tmp_path / "big.bin").write_bytes(data)
    with _store(unique_uri, multipart_threshold=part, multipart_chunksize=part) as store:
        with recording(store) as sent:
            store.log_artifact(str(tmp_path / "big.bin"))
        composes = [u for m, u in sent if m == "POST" and u.split("?")[0].endswith("/compose")]
        assert len(composes) == 3
        prefix = unique_uri.split("/", 3)[3]
        assert gcs_env.names(prefix=prefix) == [f"{prefix}/big.bin"]
        assert store.read_bytes("big.bin") == data


def test_failure_mid_upload_leaves_no_object_and_no_parts(
    unique_uri: str, gcs_env: Any, tmp_path: Path
) -> None:
    part = 256 * KiB
    (tmp_path / "f.bin").write_bytes(random_bytes(part * 6, seed=3))
    # Resuming off: the upload is aborted on failure (with it on, the parts stay for the
    # next attempt: the contract suite's ResumeTests).
    settings = {"multipart_threshold": part, "multipart_chunksize": part, "max_retries": 1, "resume": False}
    with _store(unique_uri, **settings) as store:
        # Part 4's upload (a temporary object named in the upload's URL) fails every time.
        failing = f"{TEMP_PREFIX}f.bin."
        hits: list[str] = []

        def fail(method: str, url: str, body: bytes) -> bool:
            if method == "POST" and failing in url and url.endswith(".00004"):
                hits.append(url)
                return True
            return False

        with recording(store, fail=fail), pytest.raises(TransientError, match="injected"):
            store.log_artifact(str(tmp_path / "f.bin"))
        assert len(hits) == 2  # the first attempt and its one retry
        prefix = unique_uri.split("/", 3)[3]
        assert gcs_env.names(prefix=prefix) == []  # neither the object nor a temporary
        assert not store.exists("f.bin")
        assert list(store.backend.list_multipart_uploads("")) == []


def test_abandoned_upload_is_found_and_swept(unique_uri: str, gcs_env: Any) -> None:
    with _store(unique_uri) as store:
        backend = store.backend
        upload_id = backend.create_multipart("run/model.bin")
        backend.upload_part("run/model.bin", upload_id, 1, b"x" * 1000)
        backend.upload_part("run/model.bin", upload_id, 2, b"y")
        store.write_bytes("run/other.txt", b"kept")
        # The temporaries are hidden from listings, flat and recursive.
        assert [f.path for f in store.list_artifacts("run")] == ["run/other.txt"]
        assert [f.path for f in store.iter_files()] == ["run/other.txt"]
        pending = list(backend.list_multipart_uploads(""))
        assert [(p.path, p.upload_id) for p in pending] == [("run/model.bin", upload_id)]
        assert pending[0].initiated is not None and abs(pending[0].initiated - time.time()) < 300
        assert [p.upload_id for p in backend.list_multipart_uploads("run/model.bin")] == [upload_id]
        assert list(backend.list_multipart_uploads("elsewhere")) == []
        time.sleep(1.1)
        for stale in stale_uploads(store, older_than=1):
            backend.abort_multipart(stale.path, stale.upload_id)
        prefix = unique_uri.split("/", 3)[3]
        assert gcs_env.names(prefix=prefix) == [f"{prefix}/run/other.txt"]
        backend.abort_multipart("run/model.bin", upload_id)  # idempotent


def test_listing_paginates_over_1100_objects(unique_uri: str, gcs_env: Any) -> None:
    prefix = unique_uri.split("/", 3)[3]
    bucket = gcs_env.client().bucket(gcs_env.bucket)
    names = [f"many/f{i:04d}.txt" for i in range(1100)]
    for name in names:
        bucket.blob(f"{prefix}/{name}").upload_from_string(b"x")
    bucket.blob(f"{prefix}/many/sub/deeper.txt").upload_from_string(b"y")
    with _store(unique_uri) as store:
        with recording(store) as sent:
            files = [f.path for f in store.iter_files("many")]
        assert sorted(files) == [*names, "many/sub/deeper.txt"]
        lists = [u for m, u in sent if m == "GET" and u.split("?")[0].endswith("/o")]
        assert len(lists) >= 2  # more than one page
        with recording(store) as sent:
            children = store.list_artifacts("many")
        assert len(children) == 1101 and children[-1].path == "many/sub" and children[-1].is_dir
        assert len([u for m, u in sent if m == "GET" and "/o?" in u]) >= 2
        store.delete_artifacts("many")  # every page of the tree
    assert gcs_env.names(prefix=prefix) == []


def test_directory_markers_are_ignored(
    fake_gcs_memory: Any, google_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    google_env.setenv("STORAGE_EMULATOR_HOST", fake_gcs_memory.url)
    prefix = "markers"
    unique_uri = f"gs://{fake_gcs_memory.bucket}/{prefix}"
    bucket = fake_gcs_memory.client().bucket(fake_gcs_memory.bucket)
    for marker in ("data/", "data/empty/", "data/sub/"):  # what consoles create for "folders"
        bucket.blob(f"{prefix}/{marker}").upload_from_string(b"")
    bucket.blob(f"{prefix}/data/sub/a.txt").upload_from_string(b"a")
    with _store(unique_uri) as store:
        assert [(f.path, f.is_dir) for f in store.list_artifacts("data")] == [
            ("data/empty", True),
            ("data/sub", True),
        ]
        assert [f.path for f in store.iter_files()] == ["data/sub/a.txt"]
        assert store.stat("data").is_dir
        out = store.download_artifacts("data", str(tmp_path / "dst"))
        assert sorted(p.relative_to(out).as_posix() for p in Path(out).rglob("*") if p.is_file()) == [
            "sub/a.txt"
        ]


def test_tree_delete_respects_name_boundaries(unique_uri: str, gcs_env: Any, tmp_path: Path) -> None:
    write_tree(
        tmp_path / "src", {"foo/a.txt": b"a", "foo/b/c.txt": b"c", "foobar/keep.txt": b"k", "foo.txt": b"f"}
    )
    with _store(unique_uri) as store:
        store.log_artifacts(str(tmp_path / "src"))
        store.delete_artifacts("foo")
        assert sorted(f.path for f in store.iter_files()) == ["foo.txt", "foobar/keep.txt"]
        with pytest.raises(NotFound):
            store.backend.delete("foo")


def _object_file(gcs_env: Any, unique_uri: str, path: str) -> Path:
    prefix = unique_uri.split("/", 3)[3]
    return gcs_env.data_dir / gcs_env.bucket / prefix / path


@pytest.mark.parametrize("size", [100 * KiB, 3 * MiB])  # one stream, and parallel ranges
def test_crc32c_catches_a_corrupted_download(
    unique_uri: str, gcs_env: Any, tmp_path: Path, size: int
) -> None:
    data = random_bytes(size, seed=4)
    settings: dict[str, Any] = {"max_retries": 1}
    if size > MiB:
        settings.update(ranged_download_threshold=MiB, ranged_download_chunksize=MiB)
    with _store(unique_uri, **settings) as store:
        store.write_bytes("w.bin", data)
        stored = _object_file(gcs_env, unique_uri, "w.bin")
        assert stored.read_bytes() == data  # the emulator's own copy, behind the plugin's back
        # One byte flipped on the emulator's disk: same size, same stored CRC32C.
        corrupted = bytearray(data)
        corrupted[size // 2] ^= 0xFF
        stored.write_bytes(bytes(corrupted))
        with pytest.raises(IntegrityError, match="crc32c of received bytes"):
            store.download_file("w.bin", str(tmp_path / "w.bin"))
        assert not (tmp_path / "w.bin").exists()
        assert list(tmp_path.iterdir()) == []  # no temporary left either
        stored.write_bytes(data)
        store.download_file("w.bin", str(tmp_path / "w.bin"))
        assert (tmp_path / "w.bin").read_bytes() == data


def test_missing_bucket(gcs_env: Any, tmp_path: Path) -> None:
    (tmp_path / "f.txt").write_bytes(b"f")
    with _store("gs://no-such-bucket/x") as store:
        with pytest.raises(NotFound, match="no-such-bucket"):
            store.list_artifacts()
        with pytest.raises(NotFound, match="no-such-bucket"):
            store.stat("")
        with pytest.raises(NotFound, match="no-such-bucket"):
            store.log_artifact(str(tmp_path / "f.txt"))
        with pytest.raises(NotFound, match="no-such-bucket"):
            store.read_bytes("f.txt")


def test_clients_are_shared(gcs_env: Any, unique_uri: str) -> None:
    with _store(unique_uri) as first:
        first.write_bytes("a.txt", b"a")
        before = cached_clients()
        with _store(f"gs://{gcs_env.bucket}/elsewhere") as second:
            assert second.backend.root.client is first.backend.root.client
        assert cached_clients() == before


def test_server_side_copy(unique_uri: str, gcs_env: Any) -> None:
    with _store(unique_uri) as store:
        store.write_bytes("src/a.bin", b"payload")
        store.copy_to("src/a.bin", store, "dst/b.bin")
        assert store.read_bytes("dst/b.bin") == b"payload"


def test_presigned_get(service_account: Any, unique_uri: str, gcs_env: Any) -> None:
    with _store(unique_uri) as store:
        store.write_bytes("dir/weights.bin", b"weights")
        url = store.backend.presign("dir/weights.bin", "GET", 300)
        assert url.url.startswith(gcs_env.url) and "X-Goog-Signature=" in url.url
        assert "X-Goog-Expires=300" in url.url and "response-content-disposition" in url.url
        # The emulator does not verify the signature: this proves the URL's shape and path.
        with urllib.request.urlopen(url.url, timeout=10) as response:
            assert response.read() == b"weights"


def test_a_compose_that_fails_once_is_retried(unique_uri: str, gcs_env: Any, tmp_path: Path) -> None:
    part = 256 * KiB
    data = random_bytes(part * 3, seed=9)
    (tmp_path / "f.bin").write_bytes(data)
    failed: list[str] = []

    def fail_first_compose(method: str, url: str, body: bytes) -> bool:
        if url.split("?")[0].endswith("/compose") and not failed:
            failed.append(url)
            return True
        return False

    with _store(unique_uri, multipart_threshold=part, multipart_chunksize=part) as store:
        with recording(store, fail=fail_first_compose) as sent:
            store.log_artifact(str(tmp_path / "f.bin"))
        assert len(failed) == 1
        assert len([u for _, u in sent if u.split("?")[0].endswith("/compose")]) == 2
        assert store.read_bytes("f.bin") == data
    prefix = unique_uri.split("/", 3)[3]
    assert gcs_env.names(prefix=prefix) == [f"{prefix}/f.bin"]
