"""`mlartifacts server` in front of GCS (fake-gcs-server): clients hold no Google credentials.

The server runs as operators run it (the CLI, in a subprocess, with Application
Default Credentials from a service-account key in its environment); the clients (ours
and MLflow's) run in this process with none. With proxied multipart, each part goes
from the client straight to the emulator through a V4-signed PUT URL (a temporary
object), and the server composes them on completion: its access log shows create
and complete and no artifact PUT. The emulator does not check signatures, so a
tampered URL is not refused here as it would be by GCS.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from mlartifacts import ArtifactStore
from mlartifacts.paths import TEMP_PREFIX
from mlartifacts.testing.contract import random_bytes
from mlartifacts.testing.servers import ServerProcess, logged_requests, start_artifacts_server

MiB = 1024 * 1024
API = "/api/2.0/mlflow-artifacts"
MPU_UNSUPPORTED = "Multipart upload is not supported for the current artifact repository"

# MLflow's client (used below to prove compatibility) sends telemetry by default.
os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"
os.environ["DO_NOT_TRACK"] = "true"


@dataclass
class Service:
    url: str
    bucket: str
    prefix: str  # the destination's object-name prefix in the bucket
    process: ServerProcess

    def requests_logged(self) -> list[str]:
        return logged_requests(self.process.log)


def server_env(fake_gcs: Any, credentials: Path, tmp: Path) -> dict[str, str]:
    prefixes = ("GOOGLE_", "CLOUDSDK_", "MLFLOW_GCS_", "MLARTIFACTS_", "MLFLOW_TRACKING_", "STORAGE_EMULATOR")
    env = {name: value for name, value in os.environ.items() if not name.startswith(prefixes)}
    env.update(
        STORAGE_EMULATOR_HOST=fake_gcs.url,
        GOOGLE_APPLICATION_CREDENTIALS=str(credentials),
        CLOUDSDK_CONFIG=str(tmp / "no-gcloud-config"),
        HTTPS_PROXY=os.environ["GCE_METADATA_HOST"].join(("http://", "")),  # nothing leaves the machine
    )
    return env


def start_service(tmp: Path, fake_gcs: Any, env: dict[str, str]) -> Service:
    prefix = f"service/{uuid.uuid4().hex}"
    process, url = start_artifacts_server(f"gs://{fake_gcs.bucket}/{prefix}", tmp / "server.log", env)
    return Service(url, fake_gcs.bucket, prefix, process)


@pytest.fixture(scope="module")
def service(
    fake_gcs: Any, session_keys: dict[str, Path], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Service]:
    """A server whose credentials (a service-account key) can sign URLs."""
    tmp = tmp_path_factory.mktemp("gcs-service")
    running = start_service(tmp, fake_gcs, server_env(fake_gcs, session_keys["service_account"], tmp))
    try:
        yield running
    finally:
        running.process.stop()


@pytest.fixture(scope="module")
def unsigned_service(
    fake_gcs: Any, session_keys: dict[str, Path], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Service]:
    """A server with user credentials: they read and write but cannot sign URLs."""
    tmp = tmp_path_factory.mktemp("gcs-unsigned-service")
    running = start_service(tmp, fake_gcs, server_env(fake_gcs, session_keys["federated_user"], tmp))
    try:
        yield running
    finally:
        running.process.stop()


@pytest.fixture
def client(google_env: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """A client environment without a Google setting; proxied multipart above 6 MiB, 5 MiB parts."""
    for name in list(os.environ):
        if name.startswith(("MLFLOW_TRACKING_", "MLFLOW_ENABLE_PROXY", "MLFLOW_MULTIPART")):
            google_env.delenv(name)
    google_env.setenv("MLFLOW_CREDENTIALS_FILE", os.devnull)
    google_env.setenv("MLFLOW_MULTIPART_UPLOAD_MINIMUM_FILE_SIZE", str(6 * MiB))
    google_env.setenv("MLFLOW_MULTIPART_UPLOAD_CHUNK_SIZE", str(5 * MiB))
    from mlartifacts.client import plugin

    plugin.server_info.clear()
    return google_env


def stored(fake_gcs: Any, service: Service, path: str) -> bytes:
    """The bytes of an artifact, read straight from the emulator."""
    data: bytes = (
        fake_gcs.client().bucket(service.bucket).blob(f"{service.prefix}/{path}").download_as_bytes()
    )
    return data


def temporaries(fake_gcs: Any, service: Service, below: str) -> list[str]:
    return [n for n in fake_gcs.names(prefix=f"{service.prefix}/{below}") if TEMP_PREFIX in n]


def test_server_info_advertises_multipart_both_ways(service: Service) -> None:
    info = requests.get(f"{service.url}/api/3.0/mlflow/server-info", timeout=10).json()
    assert info["multipart_uploads_enabled"] is True
    assert info["multipart_downloads_enabled"] is True
    assert info["mlartifacts"]["backend"] == "gcs"


def test_our_client_sends_parts_straight_to_gcs(
    service: Service, fake_gcs: Any, client: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    client.setenv("MLFLOW_ENABLE_PROXY_MULTIPART_UPLOAD", "true")
    run = uuid.uuid4().hex
    data = random_bytes(12 * MiB + 3)
    (tmp_path / "model.bin").write_bytes(data)
    with ArtifactStore(f"{service.url}{API}/artifacts/1/{run}/artifacts") as store:
        store.log_artifact(str(tmp_path / "model.bin"), "model")
        assert store.read_bytes("model/model.bin") == data
    assert stored(fake_gcs, service, f"1/{run}/artifacts/model/model.bin") == data
    logged = [line for line in service.requests_logged() if run in line]
    assert any(line.startswith(f"POST {API}/mpu/create/1/{run}/artifacts/model") for line in logged)
    assert any(line.startswith(f"POST {API}/mpu/complete/") for line in logged)
    assert not any(line.startswith("PUT ") for line in logged)  # no byte went through the server
    assert temporaries(fake_gcs, service, f"1/{run}") == []  # the parts were composed and deleted


def test_mlflow_client_sends_parts_straight_to_gcs(
    service: Service, fake_gcs: Any, client: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

    client.setenv("MLFLOW_ENABLE_PROXY_MULTIPART_UPLOAD", "true")
    client.setenv("MLFLOW_TRACKING_URI", service.url)
    run = uuid.uuid4().hex
    data = random_bytes(11 * MiB + 1)
    (tmp_path / "model.bin").write_bytes(data)
    repo = get_artifact_repository(f"mlflow-artifacts:/2/{run}/artifacts")
    repo.log_artifact(str(tmp_path / "model.bin"), "m")
    assert stored(fake_gcs, service, f"2/{run}/artifacts/m/model.bin") == data
    logged = [line for line in service.requests_logged() if run in line]
    assert any(line.startswith(f"POST {API}/mpu/create/") for line in logged)
    assert not any(line.startswith("PUT ") for line in logged)
    assert temporaries(fake_gcs, service, f"2/{run}") == []
    (tmp_path / "out").mkdir()
    out = repo.download_artifacts("m/model.bin", str(tmp_path / "out"))
    assert Path(out).read_bytes() == data
    assert [f.path for f in repo.list_artifacts("m")] == ["m/model.bin"]


def test_our_client_streams_and_ranges_through_the_server(
    service: Service, fake_gcs: Any, client: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    run = uuid.uuid4().hex
    files = {"a.txt": b"alpha", "sub/b.bin": random_bytes(3 * MiB + 5, seed=2)}
    for rel, data in files.items():
        (tmp_path / "src" / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "src" / rel).write_bytes(data)
    with ArtifactStore(f"{service.url}{API}/artifacts/3/{run}") as store:
        store.log_artifacts(str(tmp_path / "src"))
        out = Path(store.download_artifacts("", str(tmp_path / "dst")))
        assert b"".join(store.backend.read("sub/b.bin", 1000, 10)) == files["sub/b.bin"][1000:1010]
    for rel, data in files.items():
        assert stored(fake_gcs, service, f"3/{run}/{rel}") == data
        assert (out / rel).read_bytes() == data
    head = requests.head(f"{service.url}{API}/artifacts/3/{run}/sub/b.bin", timeout=10)
    assert head.headers["ETag"] and int(head.headers["Content-Length"]) == len(files["sub/b.bin"])
    ranged = requests.get(
        f"{service.url}{API}/artifacts/3/{run}/a.txt", headers={"Range": "bytes=1-3"}, timeout=10
    )
    assert (ranged.status_code, ranged.content) == (206, b"lph")
    missing = requests.get(f"{service.url}{API}/artifacts/3/{run}/nothing.txt", timeout=10)
    assert missing.status_code == 404


def test_presigned_get_is_served_by_storage(service: Service, fake_gcs: Any) -> None:
    run = uuid.uuid4().hex
    data = random_bytes(3 * MiB + 7)
    requests.put(f"{service.url}{API}/artifacts/4/{run}/w.bin", data=data, timeout=30).raise_for_status()
    answer = requests.get(f"{service.url}{API}/presigned/4/{run}/w.bin", timeout=10).json()
    assert answer["url"].startswith(f"{fake_gcs.url}/{service.bucket}/{service.prefix}/4/{run}/w.bin?")
    assert "X-Goog-Signature=" in answer["url"] and answer["file_size"] == len(data)
    fetched = requests.get(answer["url"], headers=answer["headers"], timeout=30)
    assert (fetched.status_code, fetched.content) == (200, data)


def test_abort_leaves_no_temporaries(service: Service, fake_gcs: Any) -> None:
    run = uuid.uuid4().hex
    created = requests.post(
        f"{service.url}{API}/mpu/create/6/{run}", json={"path": "/local/big.bin", "num_parts": 2}, timeout=10
    ).json()
    assert [c["part_number"] for c in created["credentials"]] == [1, 2]
    part = requests.put(created["credentials"][0]["url"], data=random_bytes(MiB), timeout=30)
    assert part.status_code == 200
    assert len(temporaries(fake_gcs, service, f"6/{run}")) == 1
    listing = requests.get(f"{service.url}{API}/artifacts", params={"path": f"6/{run}"}, timeout=10).json()
    assert listing == {}  # a part in flight is no artifact
    aborted = requests.post(
        f"{service.url}{API}/mpu/abort/6/{run}",
        json={"path": "/local/big.bin", "upload_id": created["upload_id"]},
        timeout=10,
    )
    assert aborted.status_code == 200
    assert temporaries(fake_gcs, service, f"6/{run}") == []


def test_credentials_that_cannot_sign_answer_501_and_clients_fall_back(
    unsigned_service: Service, fake_gcs: Any, client: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

    service = unsigned_service
    info = requests.get(f"{service.url}/api/3.0/mlflow/server-info", timeout=10).json()
    assert info["multipart_uploads_enabled"] is False and info["multipart_downloads_enabled"] is False
    run = uuid.uuid4().hex
    created = requests.post(
        f"{service.url}{API}/mpu/create/5/{run}", json={"path": "big.bin", "num_parts": 2}, timeout=10
    )
    assert created.status_code == 501 and MPU_UNSUPPORTED in created.text
    requests.put(f"{service.url}{API}/artifacts/5/{run}/w.bin", data=b"w", timeout=30).raise_for_status()
    assert requests.get(f"{service.url}{API}/presigned/5/{run}/w.bin", timeout=10).status_code == 501
    client.setenv("MLFLOW_ENABLE_PROXY_MULTIPART_UPLOAD", "true")
    client.setenv("MLFLOW_TRACKING_URI", service.url)
    data = random_bytes(7 * MiB)
    (tmp_path / "model.bin").write_bytes(data)
    get_artifact_repository(f"mlflow-artifacts:/5/{run}/mlflow").log_artifact(str(tmp_path / "model.bin"))
    with ArtifactStore(f"{service.url}{API}/artifacts/5/{run}/ours") as store:
        store.log_artifact(str(tmp_path / "model.bin"))
    for who in ("mlflow", "ours"):
        assert stored(fake_gcs, service, f"5/{run}/{who}/model.bin") == data
    logged = [line for line in service.requests_logged() if run in line]
    assert any(line.startswith(f"PUT {API}/artifacts/5/{run}/mlflow/model.bin") for line in logged)
    assert any(line.startswith(f"PUT {API}/artifacts/5/{run}/ours/model.bin") for line in logged)


def test_gc_sweeps_abandoned_uploads_under_the_destination(
    fake_gcs: Any, gcs_env: Any, service_account: Any, tmp_path: Path
) -> None:
    prefix = f"gc/{uuid.uuid4().hex}"
    inside = ArtifactStore(f"gs://{fake_gcs.bucket}/{prefix}/dest")
    outside = ArtifactStore(f"gs://{fake_gcs.bucket}/{prefix}/destination-2")
    kept = outside.backend.create_multipart("x.bin")
    outside.backend.upload_part("x.bin", kept, 1, b"o")
    swept = inside.backend.create_multipart("1/r/model.bin")
    inside.backend.upload_part("1/r/model.bin", swept, 1, b"i")
    env = dict(os.environ)

    def gc(*args: str) -> subprocess.CompletedProcess[str]:
        cmd = [sys.executable, "-c", "from mlartifacts.cli import main; main()", "gc",
               "--artifacts-destination", f"gs://{fake_gcs.bucket}/{prefix}/dest", *args]  # fmt: skip
        return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)

    time.sleep(1.1)
    young = gc("--incomplete-uploads-older-than", "1h", "--dry-run")
    assert young.returncode == 0, young.stderr
    assert swept not in young.stdout
    dry = gc("--incomplete-uploads-older-than", "1", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert swept in dry.stdout and "1/r/model.bin" in dry.stdout and kept not in dry.stdout
    done = gc("--incomplete-uploads-older-than", "1")
    assert done.returncode == 0, done.stderr
    left = fake_gcs.names(prefix=prefix)
    assert [n for n in left if swept in n] == [] and [n for n in left if kept in n] != []
    outside.backend.abort_multipart("x.bin", kept)
    inside.close()
    outside.close()
