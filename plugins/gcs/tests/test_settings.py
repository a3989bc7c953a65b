"""Each setting, observed in the requests the plugin sends to the session's fake-gcs-server."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any, Iterator

import pytest

from mlartifacts import ArtifactStore, Settings
from mlartifacts.errors import ConfigError
from mlartifacts.testing.contract import random_bytes
from mlartifacts_gcs._config import GCSConfig

KiB, MiB = 1024, 1024 * 1024


@contextlib.contextmanager
def sent_requests(store: ArtifactStore) -> Iterator[list[dict[str, Any]]]:
    """Every request the store's GCS client sends: method, url, headers and timeout."""
    session = store.backend.root.client.session
    original = session.request
    sent: list[dict[str, Any]] = []

    def request(method: str, url: str, *args: Any, **kwargs: Any) -> Any:
        if "/o" not in url.split("?")[0]:
            # google-cloud-storage >= 3.x fetches the bucket's metadata (location, for request
            # routing) in the background, with its own 10 s timeout: not a request of ours.
            return original(method, url, *args, **kwargs)
        sent.append({"method": method, "url": url, "headers": dict(kwargs.get("headers") or {}),
                     "timeout": kwargs.get("timeout", "unset")})  # fmt: skip
        return original(method, url, *args, **kwargs)

    session.request = request
    try:
        yield sent
    finally:
        del session.request


def _timeouts(store: ArtifactStore) -> set[Any]:
    with sent_requests(store) as sent:
        store.write_bytes("t.txt", b"t")
        assert store.read_bytes("t.txt") == b"t"
        store.list_artifacts()
    assert len(sent) >= 3
    return {r["timeout"] for r in sent}


def test_default_timeout_is_60_seconds(unique_uri: str) -> None:
    with ArtifactStore(unique_uri) as store:
        assert _timeouts(store) == {60.0}


@pytest.mark.parametrize(("value", "expected"), [("7.5", 7.5), ("-1", None)])
def test_upload_download_timeout(
    unique_uri: str, google_env: pytest.MonkeyPatch, value: str, expected: Any
) -> None:
    google_env.setenv("MLFLOW_ARTIFACT_UPLOAD_DOWNLOAD_TIMEOUT", value)
    with ArtifactStore(unique_uri) as store:
        assert _timeouts(store) == {expected}


def test_deprecated_timeout_is_honoured_with_a_warning(
    unique_uri: str, google_env: pytest.MonkeyPatch
) -> None:
    google_env.setenv("MLFLOW_GCS_DEFAULT_TIMEOUT", "12")
    with pytest.warns(DeprecationWarning, match="set MLFLOW_ARTIFACT_UPLOAD_DOWNLOAD_TIMEOUT instead"):
        store = ArtifactStore(unique_uri)
    with store:
        assert _timeouts(store) == {12.0}


def test_new_timeout_wins_over_the_deprecated_one(google_env: pytest.MonkeyPatch) -> None:
    google_env.setenv("MLFLOW_GCS_DEFAULT_TIMEOUT", "12")
    google_env.setenv("MLFLOW_ARTIFACT_UPLOAD_DOWNLOAD_TIMEOUT", "30")
    with pytest.warns(DeprecationWarning, match="wins"):
        assert GCSConfig.from_env().timeout == 30.0


@pytest.mark.parametrize("name", ["MLFLOW_ARTIFACT_UPLOAD_DOWNLOAD_TIMEOUT", "MLFLOW_GCS_DEFAULT_TIMEOUT"])
@pytest.mark.parametrize("value", ["0", "soon", "-2"])
def test_invalid_timeout(google_env: pytest.MonkeyPatch, name: str, value: str) -> None:
    google_env.setenv(name, value)
    with pytest.raises(ConfigError, match=name), warnings_allowed():
        GCSConfig.from_env()


@contextlib.contextmanager
def warnings_allowed() -> Iterator[None]:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        yield


def test_upload_chunk_size(unique_uri: str, google_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    google_env.setenv("MLFLOW_GCS_UPLOAD_CHUNK_SIZE", "4MiB")
    data = random_bytes(9 * MiB + 10, seed=1)
    (tmp_path / "f.bin").write_bytes(data)
    # A threshold above the file: it goes through the upload hook, as one resumable upload
    # (google-cloud-storage sends up to 8 MiB in one request whatever the chunk size).
    with ArtifactStore(unique_uri, settings=Settings(multipart_threshold=64 * MiB)) as store:
        with sent_requests(store) as sent:
            store.log_artifact(str(tmp_path / "f.bin"))
        started = [r for r in sent if r["method"] == "POST" and "uploadType=resumable" in r["url"]]
        chunks = [r for r in sent if r["method"] == "PUT"]
        assert len(started) == 1 and len(chunks) == 3  # 4 MiB, 4 MiB, then the last 1 MiB and 10 bytes
        assert store.read_bytes("f.bin") == data


def test_small_files_go_in_one_request(unique_uri: str) -> None:
    with ArtifactStore(unique_uri) as store, sent_requests(store) as sent:
        store.write_bytes("f.bin", b"x" * 1000)
    assert [r["method"] for r in sent] == ["POST"] and "uploadType=multipart" in sent[0]["url"]


def test_download_chunk_size(unique_uri: str, google_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    google_env.setenv("MLFLOW_GCS_DOWNLOAD_CHUNK_SIZE", "262144")
    data = random_bytes(MiB + 10, seed=2)
    with ArtifactStore(unique_uri) as store:
        store.write_bytes("f.bin", data)
        with sent_requests(store) as sent:
            store.download_file("f.bin", str(tmp_path / "f.bin"))
        gets = [r for r in sent if r["method"] == "GET" and "alt=media" in r["url"]]
        assert [g["headers"]["Range"] for g in gets] == [
            f"bytes={i * 256 * KiB}-{(i + 1) * 256 * KiB - 1}" for i in range(5)
        ]
        assert all("generation=" in g["url"] for g in gets[1:])  # every chunk of the same generation
        assert (tmp_path / "f.bin").read_bytes() == data


@pytest.mark.parametrize("name", ["MLFLOW_GCS_UPLOAD_CHUNK_SIZE", "MLFLOW_GCS_DOWNLOAD_CHUNK_SIZE"])
@pytest.mark.parametrize("value", ["1000000", "100KiB", "lots"])
def test_chunk_size_must_be_a_multiple_of_256_kib(
    google_env: pytest.MonkeyPatch, name: str, value: str
) -> None:
    google_env.setenv(name, value)
    with pytest.raises(ConfigError, match=name):
        ArtifactStore("gs://some-bucket/x")


def test_chunk_size_defaults(google_env: pytest.MonkeyPatch) -> None:
    config = GCSConfig.from_env()
    assert (config.upload_chunk_size, config.download_chunk_size) == (100 * MiB, 100 * MiB)
    google_env.setenv("MLFLOW_GCS_UPLOAD_CHUNK_SIZE", "8MiB")
    assert GCSConfig.from_env().upload_chunk_size == 8 * MiB


def test_emulator_host_without_scheme(fake_gcs: Any, google_env: pytest.MonkeyPatch) -> None:
    google_env.setenv("STORAGE_EMULATOR_HOST", fake_gcs.url.removeprefix("http://"))
    with ArtifactStore(f"gs://{fake_gcs.bucket}/no-scheme") as store:
        store.write_bytes("a.txt", b"a")
        assert store.read_bytes("a.txt") == b"a"
        store.delete_artifacts()


def test_pool_follows_the_engines_workers(unique_uri: str, google_env: pytest.MonkeyPatch) -> None:
    google_env.setenv("MLARTIFACTS_MAX_WORKERS", "7")
    with ArtifactStore(unique_uri) as store:
        adapter = store.backend.root.client.session.get_adapter("http://127.0.0.1")
        assert adapter._pool_maxsize == 14  # two engine pools of 7 threads


def test_pool_follows_the_store_settings_not_the_environment(google_env: pytest.MonkeyPatch) -> None:
    # Settings(max_workers=32) runs 2 x 32 threads: the pool must hold as many connections.
    google_env.setenv("MLARTIFACTS_MAX_WORKERS", "4")
    assert GCSConfig.from_env(settings=Settings(max_workers=32)).max_pool_connections == 64
    assert GCSConfig.from_env().max_pool_connections == 8
