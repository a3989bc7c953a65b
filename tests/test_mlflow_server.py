"""Our client against MLflow's own `mlflow server --artifacts-only`: the contract holds there too."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from mlartifacts import ArtifactStore
from mlartifacts.client import plugin as client_plugin
from mlartifacts.testing.contract import ArtifactStoreContract, random_bytes
from mlartifacts.testing.servers import ServerProcess, free_port, http_ok, wait_for

from .conftest import REPO

pytestmark = pytest.mark.slow

MLFLOW = REPO / "tools" / "venvs" / "mlflow" / "bin" / "mlflow"
API = "/api/2.0/mlflow-artifacts/artifacts"


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    if not MLFLOW.exists():
        pytest.skip("MLflow's server is not installed: scripts/install builds tools/venvs/mlflow")
    tmp = tmp_path_factory.mktemp("mlflow-server")
    port = free_port()
    cmd = [
        str(MLFLOW), "server", "--artifacts-only", "--artifacts-destination", str(tmp / "artifacts"),
        "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
    ]  # fmt: skip
    with ServerProcess(cmd, tmp / "mlflow.log", cwd=tmp) as proc:
        wait_for(http_ok(f"http://127.0.0.1:{port}/health"), 120, proc=proc, what="mlflow server")
        yield f"http://127.0.0.1:{port}", tmp / "artifacts"


@pytest.fixture
def clean_client_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    import os

    for name in list(os.environ):
        if name.startswith(("MLFLOW_TRACKING_", "MLFLOW_ENABLE_PROXY", "MLFLOW_MULTIPART")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("MLFLOW_CREDENTIALS_FILE", os.devnull)
    client_plugin.server_info.clear()
    return monkeypatch


class TestAgainstMlflowServer(ArtifactStoreContract):
    @pytest.fixture
    def artifact_uri(self, mlflow_server: tuple[str, Path], clean_client_env: pytest.MonkeyPatch) -> str:
        return f"{mlflow_server[0]}{API}/contract/{uuid.uuid4().hex}"

    # MLflow's server ignores Content-Digest and sends no Repr-Digest: it keeps no digests.
    records_digests = False

    @pytest.fixture
    def large_file_size(self) -> int:
        return 32 << 20


def test_files_land_where_mlflow_puts_them(
    mlflow_server: tuple[str, Path], clean_client_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    url, destination = mlflow_server
    clean_client_env.setenv("MLFLOW_TRACKING_URI", url)
    run = uuid.uuid4().hex
    (tmp_path / "model.bin").write_bytes(random_bytes(2 << 20))
    with ArtifactStore(f"mlflow-artifacts:/0/{run}/artifacts") as store:
        store.log_artifact(str(tmp_path / "model.bin"), "model")
        assert [f.path for f in store.list_artifacts("model")] == ["model/model.bin"]
    assert (destination / "0" / run / "artifacts" / "model" / "model.bin").read_bytes() == random_bytes(
        2 << 20
    )


def test_proxy_multipart_falls_back_when_mlflow_says_501(
    mlflow_server: tuple[str, Path], clean_client_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    url, destination = mlflow_server
    clean_client_env.setenv("MLFLOW_ENABLE_PROXY_MULTIPART_UPLOAD", "true")
    clean_client_env.setenv("MLFLOW_MULTIPART_UPLOAD_MINIMUM_FILE_SIZE", str(6 << 20))
    clean_client_env.setenv("MLFLOW_MULTIPART_UPLOAD_CHUNK_SIZE", str(5 << 20))
    data = random_bytes(12 << 20)
    (tmp_path / "big.bin").write_bytes(data)
    run = uuid.uuid4().hex
    with ArtifactStore(f"{url}{API}/9/{run}") as store:
        store.log_artifact(str(tmp_path / "big.bin"))
        assert store.read_bytes("big.bin") == data
    assert (destination / "9" / run / "big.bin").read_bytes() == data
