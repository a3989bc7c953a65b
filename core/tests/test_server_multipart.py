"""Proxied multipart upload and presigned download, with our client and with MLflow's.

The destination is the in-memory backend taught to presign: its URLs point at a
small storage endpoint (HMAC-signed, like real presigned URLs) that counts what
reaches it, so the tests can prove parts go straight to storage and not through
the service. The real S3 end to end lives with the S3 plugin.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import tempfile
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from mlartifacts import ArtifactStore, Capabilities, MultipartLimits, PluginRegistry, PresignedUrl, hookimpl
from mlartifacts.errors import TransientError
from mlartifacts.paths import DIGEST_PREFIX
from mlartifacts.server import ServerConfig, create_app
from mlartifacts.testing import MemoryBackend
from mlartifacts.testing.contract import random_bytes
from mlartifacts.testing.memory import MemoryRoot

from .conftest import API, serve_app

MiB = 1 << 20
KEY = b"test-signing-key"


def sign(*parts: str) -> str:
    return hmac.new(KEY, "|".join(parts).encode(), hashlib.sha256).hexdigest()


class PresigningMemory(MemoryBackend):
    """The memory backend, presigning URLs to ``storage_url`` (set once that app runs)."""

    storage_url = ""

    @hookimpl
    def capabilities(self) -> Capabilities:
        return Capabilities(ranged_read=True, presign=True, list_multipart_uploads=True)

    @hookimpl
    def presign(
        self,
        root: MemoryRoot,
        path: str,
        method: str,
        expires_in: int,
        upload_id: str | None,
        part_number: int | None,
    ) -> PresignedUrl:
        key = root.key(path)
        query = f"upload_id={upload_id}&part_number={part_number}" if upload_id else "upload_id=&part_number="
        signature = sign(method, root.bucket, key, upload_id or "", str(part_number or ""))
        return PresignedUrl(f"{self.storage_url}/{root.bucket}/{key}?{query}&sig={signature}", {}, expires_in)


@dataclass
class Storage:
    backend: PresigningMemory
    requests: list[tuple[str, str]] = field(default_factory=list)
    fail_part: int | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    def app(self) -> Starlette:
        async def handle(request: Request) -> Response:
            bucket, key = request.path_params["bucket"], request.path_params["key"]
            upload_id = request.query_params.get("upload_id", "")
            part = request.query_params.get("part_number", "")
            expected = sign(request.method, bucket, key, upload_id, part)
            if not hmac.compare_digest(expected, request.query_params.get("sig", "")):
                return Response("<Error><Code>SignatureDoesNotMatch</Code></Error>", 403)
            with self.lock:
                self.requests.append((request.method, part))
            root = MemoryRoot(bucket, "")
            if request.method == "PUT":
                if self.fail_part is not None and int(part) == self.fail_part:
                    return Response("<Error><Code>InternalError</Code></Error>", 500)
                etag = self.backend.upload_part(root, key, upload_id, int(part), await request.body())
                return Response(status_code=200, headers={"ETag": etag})
            data = self.backend.objects(bucket)[key]
            spec = request.headers.get("range")
            if spec:
                first, _, last = spec.removeprefix("bytes=").partition("-")
                start, end = int(first), min(int(last) if last else len(data) - 1, len(data) - 1)
                headers = {"Content-Range": f"bytes {start}-{end}/{len(data)}"}
                return Response(data[start : end + 1], 206, headers=headers)
            return Response(data, 200)

        return Starlette(routes=[Route("/{bucket}/{key:path}", handle, methods=["GET", "PUT"])])


@dataclass
class Setup:
    service: str
    storage: Storage
    backend: PresigningMemory
    service_requests: list[str]

    @property
    def artifacts(self) -> str:
        return self.service + API


@pytest.fixture
def setup(client_env: pytest.MonkeyPatch) -> Iterator[Setup]:
    yield from serving(PresigningMemory(MultipartLimits(5 * MiB, 5 << 30, 10_000)))


def serving(backend: PresigningMemory) -> Iterator[Setup]:
    """The service on ``backend`` (as ``memory://bucket/dest``) and its presigned storage, both served."""
    storage = Storage(backend)
    registry = PluginRegistry(autoload=False)
    registry.register(backend, "memory")
    seen: list[str] = []
    service = create_app(ServerConfig(artifacts_destination="memory://bucket/dest"), registry=registry)

    async def spy(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            seen.append(f"{scope['method']} {scope['path']}")
        await service(scope, receive, send)

    with serve_app(storage.app()) as storage_url, serve_app(spy) as service_url:
        backend.storage_url = storage_url
        yield Setup(service_url, storage, backend, seen)


def enable_proxy_multipart(env: pytest.MonkeyPatch, threshold: int = 6 * MiB) -> None:
    env.setenv("MLFLOW_MULTIPART_UPLOAD_MINIMUM_FILE_SIZE", str(threshold))
    env.setenv("MLFLOW_MULTIPART_UPLOAD_CHUNK_SIZE", str(5 * MiB))


def test_server_info_advertises_it(setup: Setup) -> None:
    info = requests.get(setup.service + "/api/3.0/mlflow/server-info", timeout=10).json()
    assert info["multipart_uploads_enabled"] is True
    assert info["multipart_downloads_enabled"] is True


@pytest.mark.parametrize("how", ["env", "server-info"])
def test_our_client_sends_parts_straight_to_storage(
    setup: Setup, client_env: pytest.MonkeyPatch, tmp_path: Path, how: str
) -> None:
    enable_proxy_multipart(client_env)
    if how == "env":
        client_env.setenv("MLFLOW_ENABLE_PROXY_MULTIPART_UPLOAD", "true")
        uri = f"{setup.artifacts}/1/run/artifacts"
    else:  # mlflow-artifacts: URIs follow /server-info when the variable is unset
        client_env.setenv("MLFLOW_TRACKING_URI", setup.service)
        uri = "mlflow-artifacts:/1/run/artifacts"
    data = random_bytes(12 * MiB + 3)
    (tmp_path / "model.bin").write_bytes(data)
    with ArtifactStore(uri) as store:
        store.log_artifact(str(tmp_path / "model.bin"), "model")
    assert setup.backend.objects("bucket")["dest/1/run/artifacts/model/model.bin"] == data
    assert sorted(part for method, part in setup.storage.requests if method == "PUT") == ["1", "2", "3"]
    assert not any(line.startswith("PUT ") for line in setup.service_requests)  # no bytes through the service
    assert any("/mpu/create/1/run/artifacts/model" in line for line in setup.service_requests)
    assert any("/mpu/complete/" in line for line in setup.service_requests)


def test_below_the_threshold_goes_in_one_put(
    setup: Setup, client_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    enable_proxy_multipart(client_env, threshold=64 * MiB)
    client_env.setenv("MLFLOW_ENABLE_PROXY_MULTIPART_UPLOAD", "true")
    (tmp_path / "small.bin").write_bytes(random_bytes(12 * MiB))
    with ArtifactStore(f"{setup.artifacts}/r") as store:
        store.log_artifact(str(tmp_path / "small.bin"))
    assert setup.storage.requests == []
    assert any(line.startswith("PUT ") for line in setup.service_requests)


def test_failed_part_aborts_the_upload(setup: Setup, client_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from mlartifacts import Settings

    enable_proxy_multipart(client_env)
    client_env.setenv("MLFLOW_ENABLE_PROXY_MULTIPART_UPLOAD", "true")
    setup.storage.fail_part = 2
    (tmp_path / "model.bin").write_bytes(random_bytes(12 * MiB))
    settings = Settings(max_retries=2, retry_backoff=0.01)
    with (
        ArtifactStore(f"{setup.artifacts}/r", settings=settings) as store,
        pytest.raises(TransientError, match=r"part 2.*HTTP 500"),
    ):
        store.log_artifact(str(tmp_path / "model.bin"))
    assert setup.backend.pending_uploads() == []
    assert any("/mpu/abort/" in line for line in setup.service_requests)
    assert setup.backend.objects("bucket") == {}


def test_presigned_ranged_download(setup: Setup, client_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from mlartifacts import Settings

    data = random_bytes(6 * MiB + 5)
    requests.put(f"{setup.artifacts}/d/blob.bin", data=data, timeout=30).raise_for_status()
    client_env.setenv("MLFLOW_ENABLE_PROXY_MULTIPART_DOWNLOAD", "true")
    settings = Settings(ranged_download_threshold=MiB, ranged_download_chunksize=2 * MiB)
    before = len(setup.service_requests)
    with ArtifactStore(f"{setup.artifacts}/d", settings=settings) as store:
        out = store.download_file("blob.bin", str(tmp_path / "blob.bin"))
        assert b"".join(store.read("blob.bin", 100, 50)) == data[100:150]
    assert Path(out).read_bytes() == data
    assert sum(1 for method, _ in setup.storage.requests if method == "GET") >= 4  # 4 ranges, then 1 read
    assert not any("/artifacts/d/blob.bin" in line for line in setup.service_requests[before:])


def test_unsupported_destination_falls_back_to_one_put(
    server: Any, client_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    enable_proxy_multipart(client_env)
    client_env.setenv("MLFLOW_ENABLE_PROXY_MULTIPART_UPLOAD", "true")
    data = random_bytes(12 * MiB)
    (tmp_path / "m.bin").write_bytes(data)
    with ArtifactStore(f"{server.artifacts}/fallback/{uuid.uuid4().hex}") as store:
        store.log_artifact(str(tmp_path / "m.bin"))
        assert store.read_bytes("m.bin") == data


# -- MLflow's own client ---------------------------------------------------------------------


def mlflow_repo(uri: str) -> Any:
    from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

    return get_artifact_repository(uri)


def test_mlflow_client_proxied_multipart(
    setup: Setup, client_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    enable_proxy_multipart(client_env)
    client_env.setenv("MLFLOW_ENABLE_PROXY_MULTIPART_UPLOAD", "true")
    client_env.setenv("MLFLOW_TRACKING_URI", setup.service)
    data = random_bytes(12 * MiB + 1)
    (tmp_path / "model.bin").write_bytes(data)
    mlflow_repo("mlflow-artifacts:/3/run/artifacts").log_artifact(str(tmp_path / "model.bin"), "m")
    assert setup.backend.objects("bucket")["dest/3/run/artifacts/m/model.bin"] == data
    assert sorted(part for method, part in setup.storage.requests if method == "PUT") == ["1", "2", "3"]
    assert not any(line.startswith("PUT ") for line in setup.service_requests)


def test_mlflow_client_falls_back_on_501(server: Any, client_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    enable_proxy_multipart(client_env)
    client_env.setenv("MLFLOW_ENABLE_PROXY_MULTIPART_UPLOAD", "true")
    client_env.setenv("MLFLOW_TRACKING_URI", server.url)
    data = random_bytes(12 * MiB)
    (tmp_path / "m.bin").write_bytes(data)
    run = uuid.uuid4().hex
    mlflow_repo(f"mlflow-artifacts:/4/{run}/artifacts").log_artifact(str(tmp_path / "m.bin"))
    assert (server.destination / "4" / run / "artifacts" / "m.bin").read_bytes() == data


def test_mlflow_client_end_to_end(server: Any, client_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    client_env.setenv("MLFLOW_TRACKING_URI", server.url)
    run = uuid.uuid4().hex
    repo = mlflow_repo(f"mlflow-artifacts:/5/{run}/artifacts")
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    (src / "a.txt").write_text("alpha")
    (src / "sub" / "b.bin").write_bytes(random_bytes(300_000))
    repo.log_artifact(str(src / "a.txt"))
    repo.log_artifacts(str(src), "tree")
    listed = [(f.path, f.is_dir, f.file_size) for f in repo.list_artifacts()]
    assert listed == [("a.txt", False, 5), ("tree", True, None)]
    assert [f.path for f in repo.list_artifacts("tree")] == ["tree/a.txt", "tree/sub"]
    out = Path(repo.download_artifacts("tree", tempfile.mkdtemp(dir=tmp_path)))
    assert (out / "sub" / "b.bin").read_bytes() == random_bytes(300_000)
    repo.delete_artifacts("tree")
    assert [f.path for f in repo.list_artifacts()] == ["a.txt"]
    stored = sorted(os.listdir(server.destination / "5" / run / "artifacts"))
    assert [n for n in stored if not n.startswith(DIGEST_PREFIX)] == ["a.txt"]  # (a sidecar without xattrs)
    # MLflow's client sends no Content-Digest: the server hashed what it received, and says so.
    response = requests.head(
        f"{server.url}/api/2.0/mlflow-artifacts/artifacts/5/{run}/artifacts/a.txt", timeout=10
    )
    assert (
        response.headers["Repr-Digest"]
        == "sha-256=:" + base64.b64encode(hashlib.sha256(b"alpha").digest()).decode() + ":"
    )


def test_mlflow_client_with_auth(tmp_path: Path, client_env: pytest.MonkeyPatch) -> None:
    from .conftest import start_cli_server

    (tmp_path / "users").write_text("alice:wonderland\n")
    proc = start_cli_server(tmp_path, "--users-file", str(tmp_path / "users"))
    try:
        client_env.setenv("MLFLOW_TRACKING_URI", f"http://127.0.0.1:{proc.port}")  # type: ignore[attr-defined]
        (tmp_path / "f.txt").write_text("secret")
        with pytest.raises(Exception, match="401"):
            mlflow_repo("mlflow-artifacts:/6/r/artifacts").log_artifact(str(tmp_path / "f.txt"))
        client_env.setenv("MLFLOW_TRACKING_USERNAME", "alice")
        client_env.setenv("MLFLOW_TRACKING_PASSWORD", "wonderland")
        repo = mlflow_repo("mlflow-artifacts:/6/r/artifacts")
        repo.log_artifact(str(tmp_path / "f.txt"))
        assert [f.path for f in repo.list_artifacts()] == ["f.txt"]
    finally:
        proc.stop()


@pytest.mark.parametrize(
    ("route", "body"),
    [
        ("complete", {"path": "f.bin", "upload_id": "nope/../x", "parts": [{"part_number": 1, "etag": "e"}]}),
        ("abort", {"path": "f.bin", "upload_id": "bad\nid"}),
        ("complete", {"path": "f.bin", "upload_id": "u", "parts": [{"part_number": 10**30, "etag": "e"}]}),
        ("complete", {"path": "f.bin", "upload_id": "u", "parts": [{"part_number": 0, "etag": "e"}]}),
        ("complete", {"path": "f.bin", "upload_id": "u", "parts": [{"part_number": True, "etag": "e"}]}),
        ("complete", {"path": "f.bin", "upload_id": "u", "parts": [{"part_number": 1, "etag": {"a": 1}}]}),
        ("complete", {"path": "f.bin", "upload_id": "u", "parts": [{"part_number": 1, "url": 5}]}),
        ("complete", {"path": "f.bin", "upload_id": "u", "parts": ["not a part"]}),
        ("complete", {"path": "f.bin", "upload_id": "u", "parts": []}),
    ],
)
def test_malformed_upload_ids_and_parts_are_refused(setup: Setup, route: str, body: dict[str, Any]) -> None:
    response = requests.post(
        f"{setup.service}/api/2.0/mlflow-artifacts/mpu/{route}/run", json=body, timeout=10
    )
    assert response.status_code == 400, response.text
    assert response.json()["error_code"] == "INVALID_PARAMETER_VALUE"


# -- presigned transfers by server-info, and their fallbacks ------------------------------------


def test_http_uris_follow_server_info(setup: Setup, client_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Without MLflow's variables, an http(s) URI uses what /server-info advertises, both ways."""
    enable_proxy_multipart(client_env)
    data = random_bytes(12 * MiB + 1)
    (tmp_path / "model.bin").write_bytes(data)
    with ArtifactStore(f"{setup.artifacts}/h") as store:
        store.log_artifact(str(tmp_path / "model.bin"))
        out = store.download_file("model.bin", str(tmp_path / "back.bin"))
    assert Path(out).read_bytes() == data
    assert sorted(part for method, part in setup.storage.requests if method == "PUT") == ["1", "2", "3"]
    assert any(method == "GET" for method, _ in setup.storage.requests)
    assert not any(line.startswith(("PUT ", "GET /api/2.0/mlflow-artifacts/artifacts/h/model.bin"))
                   for line in setup.service_requests)  # fmt: skip


def test_presigned_transfers_can_be_turned_off(
    setup: Setup, client_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    enable_proxy_multipart(client_env)
    client_env.setenv("MLARTIFACTS_PRESIGNED_TRANSFERS", "false")
    data = random_bytes(12 * MiB)
    (tmp_path / "model.bin").write_bytes(data)
    with ArtifactStore(f"{setup.artifacts}/off") as store:
        store.log_artifact(str(tmp_path / "model.bin"))
        assert store.read_bytes("model.bin") == data
    assert setup.storage.requests == []
    assert "PUT /api/2.0/mlflow-artifacts/artifacts/off/model.bin" in setup.service_requests
    assert not any("/mpu/" in line or "/presigned/" in line for line in setup.service_requests)


def test_unreachable_storage_falls_back_to_the_server(
    setup: Setup, client_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Presigned URLs to a storage address the client cannot reach: the bytes go through the server."""
    from mlartifacts.client import plugin
    from mlartifacts.testing.servers import free_port

    plugin.reset()
    enable_proxy_multipart(client_env)
    setup.backend.storage_url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    data = random_bytes(12 * MiB + 7)
    (tmp_path / "model.bin").write_bytes(data)
    (tmp_path / "second.bin").write_bytes(data[::-1])
    try:
        with ArtifactStore(f"{setup.artifacts}/u") as store:
            store.log_artifact(str(tmp_path / "model.bin"))
            store.log_artifact(str(tmp_path / "second.bin"))  # not even tried: known unreachable
            out = store.download_file("model.bin", str(tmp_path / "back.bin"))
        assert Path(out).read_bytes() == data
        assert setup.backend.objects("bucket")["dest/u/second.bin"] == data[::-1]
        assert setup.backend.pending_uploads() == []  # the presigned attempt was aborted
        seen = setup.service_requests
        assert [line for line in seen if "/mpu/" in line] == [
            "POST /api/2.0/mlflow-artifacts/mpu/create/u",
            "POST /api/2.0/mlflow-artifacts/mpu/abort/u",
        ]
        assert "PUT /api/2.0/mlflow-artifacts/artifacts/u/model.bin" in seen
        assert "PUT /api/2.0/mlflow-artifacts/artifacts/u/second.bin" in seen
        assert "GET /api/2.0/mlflow-artifacts/artifacts/u/model.bin" in seen
    finally:
        plugin.reset()


def test_presigned_download_falls_back_on_501(
    server: Any, client_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A destination that cannot presign answers 501: the download goes through the server."""
    client_env.setenv("MLFLOW_ENABLE_PROXY_MULTIPART_DOWNLOAD", "true")
    run = f"fallback-get/{uuid.uuid4().hex}"
    data = random_bytes(3 * MiB + 1)
    requests.put(f"{server.artifacts}/{run}/d.bin", data=data, timeout=30).raise_for_status()
    presigned = requests.get(f"{server.url}/api/2.0/mlflow-artifacts/presigned/{run}/d.bin", timeout=10)
    assert presigned.status_code == 501
    from mlartifacts import Settings

    settings = Settings(ranged_download_threshold=MiB, ranged_download_chunksize=MiB)
    with ArtifactStore(f"{server.artifacts}/{run}", settings=settings) as store:
        out = store.download_file("d.bin", str(tmp_path / "d.bin"))
        assert b"".join(store.read("d.bin", 10, 20)) == data[10:30]
    assert Path(out).read_bytes() == data
