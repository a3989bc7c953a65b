"""Proxied multipart uploads resume through the service (the ``/mpu/parts`` extension).

The destination is test_server_multipart's presigning memory backend, also listing
parts; the storage endpoint counts the part PUTs that reach it. The real S3 end to
end lives with the S3 plugin's service tests.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from mlartifacts import ArtifactStore, Capabilities, MultipartLimits, Settings, hookimpl
from mlartifacts.client import plugin as client_plugin
from mlartifacts.errors import TransientError
from mlartifacts.testing._resume_tests import journal_entries
from mlartifacts.testing.contract import random_bytes

from .test_server_multipart import MiB, PresigningMemory, Setup, enable_proxy_multipart, serving


class ListingPresigningMemory(PresigningMemory):
    @hookimpl
    def capabilities(self) -> Capabilities:
        return Capabilities(ranged_read=True, presign=True, list_multipart_uploads=True, list_parts=True)


@pytest.fixture
def setup(client_env: pytest.MonkeyPatch) -> Iterator[Setup]:
    yield from serving(ListingPresigningMemory(MultipartLimits(5 * MiB, 5 << 30, 10_000)))


def test_server_info_advertises_list_parts(setup: Setup) -> None:
    info = requests.get(setup.service + "/api/3.0/mlflow/server-info", timeout=10).json()
    assert info["mlartifacts"]["list_parts"] is True


def test_a_proxied_upload_resumes_with_the_missing_parts(
    setup: Setup, client_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    enable_proxy_multipart(client_env)
    client_env.setenv("MLFLOW_ENABLE_PROXY_MULTIPART_UPLOAD", "true")
    data = random_bytes(20 * MiB + 3)  # 5 parts of 5 MiB
    (tmp_path / "model.bin").write_bytes(data)
    settings = Settings(max_workers=1, max_retries=0, retry_backoff=0.01, state_dir=str(tmp_path / "state"))
    setup.storage.fail_part = 3
    with ArtifactStore(f"{setup.artifacts}/r", settings=settings) as store:
        with pytest.raises(TransientError, match="HTTP 500"):
            store.log_artifact(str(tmp_path / "model.bin"))
        assert store.backend.lists_parts
    assert setup.backend.pending_uploads() == ["dest/r/model.bin"]  # kept, not aborted
    assert not any("/mpu/abort/" in line for line in setup.service_requests)
    _, entries = journal_entries(tmp_path / "state", "upload")
    journaled = {e["n"] for e in entries}
    assert {1, 2} <= journaled  # and 4, if the worker took it before part 3's failure was seen
    assert 3 not in journaled
    # A new process knows nothing of the upload but what its journal says.
    client_plugin._uploads.clear()
    setup.storage.fail_part = None
    setup.storage.requests.clear()
    with ArtifactStore(f"{setup.artifacts}/r", settings=settings) as store:
        store.log_artifact(str(tmp_path / "model.bin"))
    sent = sorted(int(part) for method, part in setup.storage.requests if method == "PUT")
    assert sent == sorted({1, 2, 3, 4, 5} - journaled)
    assert any("/mpu/parts/r" in line for line in setup.service_requests)
    assert setup.backend.objects("bucket")["dest/r/model.bin"] == data
    assert setup.backend.pending_uploads() == []


def test_parts_of_an_unknown_upload_is_a_404(setup: Setup) -> None:
    response = requests.post(
        f"{setup.artifacts.replace('/artifacts', '/mpu/parts')}/r",
        json={"path": "m.bin", "upload_id": "0123456789abcdef0123456789abcdef"},
        timeout=10,
    )
    assert response.status_code == 404
    assert response.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"


def test_presign_list_is_bounded(setup: Setup) -> None:
    response = requests.post(
        f"{setup.artifacts.replace('/artifacts', '/mpu/parts')}/r",
        json={"path": "m.bin", "upload_id": "x", "presign": list(range(1, 500))},
        timeout=10,
    )
    assert response.status_code == 400
