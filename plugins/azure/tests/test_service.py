"""`mlartifacts server` in front of Azure Blob Storage (Azurite): clients hold no Azure credentials.

The server runs as operators run it (the CLI, in a subprocess, with the Azure
settings in its environment); the clients (ours and MLflow's) run in this process
without any Azure variable. With proxied multipart, each part goes from the client
straight to Azurite through a SAS-signed ``comp=block`` URL: the server's access
log shows the create and complete calls and no artifact PUT.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from mlartifacts import ArtifactStore, Settings
from mlartifacts.testing.contract import random_bytes
from mlartifacts.testing.servers import ServerProcess, logged_requests, start_artifacts_server

MiB = 1024 * 1024
API = "/api/2.0/mlflow-artifacts"

# MLflow's client (used below to prove compatibility) sends telemetry by default.
os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"
os.environ["DO_NOT_TRACK"] = "true"


@dataclass
class Service:
    url: str
    prefix: str  # the destination's blob-name prefix in the container
    process: ServerProcess

    def requests_logged(self) -> list[str]:
        return logged_requests(self.process.log)

    def logged_soon(self, prefix: str, within: float = 10.0) -> bool:
        """Whether a request line starting with ``prefix`` is logged within ``within`` seconds.

        The server writes a request's line once the response is sent: the client may
        hold the answer a moment before the line is in the log (under load).
        """
        deadline = time.monotonic() + within
        while not any(line.startswith(prefix) for line in self.requests_logged()):
            if time.monotonic() > deadline:
                return False
            time.sleep(0.05)
        return True


@pytest.fixture(scope="module")
def service(azurite: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("AZURE_STORAGE_", "MLARTIFACTS_", "MLFLOW_"))
    }
    env["AZURE_STORAGE_CONNECTION_STRING"] = azurite.connection_string
    prefix = f"service/{uuid.uuid4().hex}"
    log = tmp_path_factory.mktemp("azure-service") / "server.log"
    process, url = start_artifacts_server(azurite.uri(prefix), log, env)
    try:
        yield Service(url, prefix, process)
    finally:
        process.stop()


@pytest.fixture
def client(clean_env: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """A client environment without an Azure setting; proxied multipart above 6 MiB, 5 MiB parts."""
    for name in list(os.environ):
        if name.startswith(("MLFLOW_ENABLE_PROXY", "MLFLOW_MULTIPART")):
            clean_env.delenv(name)
    clean_env.setenv("MLFLOW_CREDENTIALS_FILE", os.devnull)
    clean_env.setenv("MLFLOW_MULTIPART_UPLOAD_MINIMUM_FILE_SIZE", str(6 * MiB))
    clean_env.setenv("MLFLOW_MULTIPART_UPLOAD_CHUNK_SIZE", str(5 * MiB))
    from mlartifacts.client import plugin

    plugin.server_info.clear()
    return clean_env


def blob(azurite: Any, service: Service, path: str) -> Any:
    return azurite.admin().get_blob_client(azurite.container, f"{service.prefix}/{path}")


def test_server_info_advertises_multipart_both_ways(service: Service) -> None:
    info = requests.get(f"{service.url}/api/3.0/mlflow/server-info", timeout=10).json()
    assert info["multipart_uploads_enabled"] is True
    assert info["multipart_downloads_enabled"] is True
    assert info["mlartifacts"]["backend"] == "azure"


def test_our_client_sends_blocks_straight_to_azure(
    service: Service, azurite: Any, client: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    client.setenv("MLFLOW_ENABLE_PROXY_MULTIPART_UPLOAD", "true")
    run = uuid.uuid4().hex
    data = random_bytes(12 * MiB + 3)
    (tmp_path / "model.bin").write_bytes(data)
    with ArtifactStore(f"{service.url}{API}/artifacts/1/{run}/artifacts") as store:
        store.log_artifact(str(tmp_path / "model.bin"), "model")
        assert store.read_bytes("model/model.bin") == data
    stored = blob(azurite, service, f"1/{run}/artifacts/model/model.bin")
    assert stored.download_blob().readall() == data
    committed, uncommitted = stored.get_block_list("all")
    assert (len(committed), uncommitted) == (3, [])
    logged = [line for line in service.requests_logged() if run in line]
    assert any(line.startswith(f"POST {API}/mpu/create/1/{run}/artifacts/model") for line in logged)
    assert any(line.startswith(f"POST {API}/mpu/complete/") for line in logged)
    assert not any(line.startswith("PUT ") for line in logged)  # no byte went through the server


def test_mlflow_client_sends_blocks_straight_to_azure(
    service: Service, azurite: Any, client: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """MLflow's own client, unchanged: it sends no upload id and a null ETag (Azure gives none)."""
    from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

    client.setenv("MLFLOW_ENABLE_PROXY_MULTIPART_UPLOAD", "true")
    client.setenv("MLFLOW_TRACKING_URI", service.url)
    run = uuid.uuid4().hex
    data = random_bytes(11 * MiB + 1)
    (tmp_path / "model.bin").write_bytes(data)
    repo = get_artifact_repository(f"mlflow-artifacts:/2/{run}/artifacts")
    repo.log_artifact(str(tmp_path / "model.bin"), "m")
    stored = blob(azurite, service, f"2/{run}/artifacts/m/model.bin")
    assert stored.download_blob().readall() == data
    assert len(stored.get_block_list("committed")[0]) == 3
    logged = [line for line in service.requests_logged() if run in line]
    assert any(line.startswith(f"POST {API}/mpu/create/") for line in logged)
    assert any(line.startswith(f"POST {API}/mpu/complete/") for line in logged)
    assert not any(line.startswith("PUT ") for line in logged)
    (tmp_path / "out").mkdir()
    out = repo.download_artifacts("m/model.bin", str(tmp_path / "out"))
    assert Path(out).read_bytes() == data


def test_small_files_still_go_through_the_server(
    service: Service, azurite: Any, client: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    client.setenv("MLFLOW_ENABLE_PROXY_MULTIPART_UPLOAD", "true")
    run = uuid.uuid4().hex
    (tmp_path / "small.txt").write_bytes(b"below the threshold")
    with ArtifactStore(f"{service.url}{API}/artifacts/3/{run}") as store:
        store.log_artifact(str(tmp_path / "small.txt"))
    assert blob(azurite, service, f"3/{run}/small.txt").download_blob().readall() == b"below the threshold"


def test_presigned_get_is_served_by_storage(service: Service, azurite: Any) -> None:
    run = uuid.uuid4().hex
    data = random_bytes(2 * MiB + 7)
    requests.put(f"{service.url}{API}/artifacts/4/{run}/w.bin", data=data, timeout=30).raise_for_status()
    answer = requests.get(f"{service.url}{API}/presigned/4/{run}/w.bin", timeout=10).json()
    assert answer["url"].startswith(f"{azurite.endpoint}/{azurite.container}/{service.prefix}/4/{run}/w.bin?")
    assert answer["file_size"] == len(data)
    fetched = requests.get(answer["url"], headers=answer["headers"], timeout=30)
    assert (fetched.status_code, fetched.content) == (200, data)
    assert 'filename="w.bin"' in fetched.headers["Content-Disposition"]
    # The SAS is bound to its blob and to reading.
    assert requests.get(answer["url"].replace("w.bin", "x.bin"), timeout=30).status_code == 403
    assert (
        requests.put(
            answer["url"], data=b"x", headers={"x-ms-blob-type": "BlockBlob"}, timeout=30
        ).status_code
        == 403
    )


def test_abort_commits_nothing(service: Service, azurite: Any) -> None:
    run = uuid.uuid4().hex
    created = requests.post(
        f"{service.url}{API}/mpu/create/6/{run}", json={"path": "/local/big.bin", "num_parts": 2}, timeout=10
    ).json()
    assert [c["part_number"] for c in created["credentials"]] == [1, 2]
    assert "comp=block&blockid=" in created["credentials"][0]["url"]
    part = requests.put(created["credentials"][0]["url"], data=random_bytes(MiB), timeout=30)
    assert part.status_code == 201
    aborted = requests.post(
        f"{service.url}{API}/mpu/abort/6/{run}",
        json={"path": "/local/big.bin", "upload_id": created["upload_id"]},
        timeout=10,
    )
    assert aborted.status_code == 200
    # Staged blocks cannot be deleted alone; Azure drops them after 7 days. Nothing is visible.
    listing = requests.get(f"{service.url}{API}/artifacts", params={"path": f"6/{run}"}, timeout=10).json()
    assert listing == {}
    assert not blob(azurite, service, f"6/{run}/big.bin").exists()


def test_complete_needs_an_etag_or_a_url(service: Service) -> None:
    run = uuid.uuid4().hex
    answer = requests.post(
        f"{service.url}{API}/mpu/complete/7/{run}",
        json={"path": "big.bin", "upload_id": "x", "parts": [{"part_number": 1, "etag": None}]},
        timeout=10,
    )
    assert answer.status_code == 400
    assert "'etag' or 'url'" in answer.json()["message"]


def test_failed_part_leaves_no_blob(
    service: Service, azurite: Any, client: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A part storage refuses for good (a tampered SAS): the client aborts and no blob appears."""
    from mlartifacts.client import _plugin
    from mlartifacts.errors import ArtifactError

    client.setenv("MLFLOW_ENABLE_PROXY_MULTIPART_UPLOAD", "true")
    run = uuid.uuid4().hex
    (tmp_path / "model.bin").write_bytes(random_bytes(12 * MiB))
    original = _plugin.request
    blocks: list[str] = []

    def tamper_part_two(method: str, url: str, **kwargs: Any) -> Any:
        if method == "PUT" and "comp=block" in url:
            block = url.split("blockid=")[1].split("&")[0]
            if block not in blocks:
                blocks.append(block)
            if blocks.index(block) == 1:
                url = url.replace("sig=", "sig=0")  # storage refuses the signature
        return original(method, url, **kwargs)

    client.setattr(_plugin, "request", tamper_part_two)
    settings = Settings(max_retries=1, retry_backoff=0.01, max_workers=1)
    with (
        ArtifactStore(f"{service.url}{API}/artifacts/8/{run}", settings=settings) as store,
        pytest.raises(ArtifactError, match="part 2"),
    ):
        store.log_artifact(str(tmp_path / "model.bin"))
    client.undo()
    assert service.logged_soon(f"POST {API}/mpu/abort/8/{run}")
    assert not blob(azurite, service, f"8/{run}/model.bin").exists()
