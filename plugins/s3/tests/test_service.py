"""`mlartifacts server` in front of S3 (SeaweedFS): clients hold no S3 credentials.

The server runs as operators run it (the CLI, in a subprocess, with the S3
settings in its environment); the clients (ours and MLflow's) run in this process
without any AWS variable. With proxied multipart, the parts go from the client
straight to SeaweedFS through presigned URLs: the server's access log shows the
create and complete calls and no artifact PUT.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import pytest
import requests

from mlartifacts import ArtifactStore, Settings
from mlartifacts.testing.contract import random_bytes
from mlartifacts.testing.servers import (
    Relay,
    ServerProcess,
    free_port,
    logged_requests,
    start_artifacts_server,
)

if TYPE_CHECKING:
    from conftest import SeaweedFS

MiB = 1024 * 1024
API = "/api/2.0/mlflow-artifacts"

# MLflow's client (used below to prove compatibility) sends telemetry by default.
os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"
os.environ["DO_NOT_TRACK"] = "true"


@dataclass
class Service:
    url: str
    bucket: str
    prefix: str  # the destination's key prefix in the bucket
    process: ServerProcess

    def requests_logged(self) -> list[str]:
        return logged_requests(self.process.log)


def server_env(seaweedfs: SeaweedFS, endpoint: str, **extra: str) -> dict[str, str]:
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("AWS_", "MLFLOW_S3_", "MLFLOW_BOTO_", "MLARTIFACTS_", "MLFLOW_TRACKING_"))
    }
    env.update(seaweedfs.user_env(endpoint))
    env.update(
        AWS_CONFIG_FILE=os.devnull,
        AWS_SHARED_CREDENTIALS_FILE=os.devnull,
        AWS_EC2_METADATA_DISABLED="true",
        **extra,
    )
    return env


def start_service(tmp: Path, seaweedfs: SeaweedFS, env: dict[str, str]) -> Service:
    prefix = f"service/{uuid.uuid4().hex}"
    process, url = start_artifacts_server(f"s3://{seaweedfs.bucket}/{prefix}", tmp / "server.log", env)
    return Service(url, seaweedfs.bucket, prefix, process)


@pytest.fixture(scope="module")
def service(seaweedfs: SeaweedFS, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    running = start_service(
        tmp_path_factory.mktemp("s3-service"), seaweedfs, server_env(seaweedfs, seaweedfs.endpoint)
    )
    try:
        yield running
    finally:
        running.process.stop()


@pytest.fixture
def client(aws_env: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """A client environment without a single AWS setting; proxied multipart above 6 MiB, 5 MiB parts."""
    for name in list(os.environ):
        if name.startswith(("MLFLOW_TRACKING_", "MLFLOW_ENABLE_PROXY", "MLFLOW_MULTIPART")):
            aws_env.delenv(name)
    aws_env.setenv("MLFLOW_CREDENTIALS_FILE", os.devnull)
    aws_env.setenv("MLFLOW_MULTIPART_UPLOAD_MINIMUM_FILE_SIZE", str(6 * MiB))
    aws_env.setenv("MLFLOW_MULTIPART_UPLOAD_CHUNK_SIZE", str(5 * MiB))
    from mlartifacts.client import plugin

    plugin.server_info.clear()
    return aws_env


def stored(seaweedfs: SeaweedFS, service: Service, path: str) -> tuple[bytes, str]:
    """The bytes and ETag of an artifact, read by the admin straight from SeaweedFS."""
    obj = seaweedfs.client().get_object(Bucket=service.bucket, Key=f"{service.prefix}/{path}")
    return obj["Body"].read(), obj["ETag"].strip('"')


def pending(seaweedfs: SeaweedFS, prefix: str) -> list[dict[str, Any]]:
    uploads = seaweedfs.client().list_multipart_uploads(Bucket=seaweedfs.bucket, Prefix=prefix)
    return list(uploads.get("Uploads", ()))


def test_server_info_advertises_multipart_both_ways(service: Service) -> None:
    info = requests.get(f"{service.url}/api/3.0/mlflow/server-info", timeout=10).json()
    assert info["multipart_uploads_enabled"] is True
    assert info["multipart_downloads_enabled"] is True


@pytest.mark.parametrize("how", ["env", "server-info"])
def test_our_client_sends_parts_straight_to_s3(
    service: Service, seaweedfs: SeaweedFS, client: pytest.MonkeyPatch, tmp_path: Path, how: str
) -> None:
    run = uuid.uuid4().hex
    if how == "env":
        client.setenv("MLFLOW_ENABLE_PROXY_MULTIPART_UPLOAD", "true")
        uri = f"{service.url}{API}/artifacts/1/{run}/artifacts"
    else:  # unset: mlflow-artifacts: URIs follow what /server-info advertises
        client.setenv("MLFLOW_TRACKING_URI", service.url)
        uri = f"mlflow-artifacts:/1/{run}/artifacts"
    data = random_bytes(12 * MiB + 3)
    (tmp_path / "model.bin").write_bytes(data)
    with ArtifactStore(uri) as store:
        store.log_artifact(str(tmp_path / "model.bin"), "model")
        assert store.read_bytes("model/model.bin") == data
    body, etag = stored(seaweedfs, service, f"1/{run}/artifacts/model/model.bin")
    assert body == data
    assert etag.endswith("-3")  # S3 made it from three parts
    logged = [line for line in service.requests_logged() if run in line]
    assert any(line.startswith(f"POST {API}/mpu/create/1/{run}/artifacts/model") for line in logged)
    assert any(line.startswith(f"POST {API}/mpu/complete/") for line in logged)
    assert not any(line.startswith("PUT ") for line in logged)  # no byte went through the server
    assert pending(seaweedfs, f"{service.prefix}/1/{run}") == []


def test_mlflow_client_sends_parts_straight_to_s3(
    service: Service, seaweedfs: SeaweedFS, client: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

    client.setenv("MLFLOW_ENABLE_PROXY_MULTIPART_UPLOAD", "true")
    client.setenv("MLFLOW_TRACKING_URI", service.url)
    run = uuid.uuid4().hex
    data = random_bytes(11 * MiB + 1)
    (tmp_path / "model.bin").write_bytes(data)
    repo = get_artifact_repository(f"mlflow-artifacts:/2/{run}/artifacts")
    repo.log_artifact(str(tmp_path / "model.bin"), "m")
    body, etag = stored(seaweedfs, service, f"2/{run}/artifacts/m/model.bin")
    assert body == data
    assert etag.endswith("-3")
    logged = [line for line in service.requests_logged() if run in line]
    assert any(line.startswith(f"POST {API}/mpu/create/") for line in logged)
    assert not any(line.startswith("PUT ") for line in logged)
    (tmp_path / "out").mkdir()
    out = repo.download_artifacts("m/model.bin", str(tmp_path / "out"))
    assert Path(out).read_bytes() == data


def test_small_files_still_go_through_the_server(
    service: Service, seaweedfs: SeaweedFS, client: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    client.setenv("MLFLOW_ENABLE_PROXY_MULTIPART_UPLOAD", "true")
    run = uuid.uuid4().hex
    (tmp_path / "small.txt").write_bytes(b"below the threshold")
    with ArtifactStore(f"{service.url}{API}/artifacts/3/{run}") as store:
        store.log_artifact(str(tmp_path / "small.txt"))
    assert stored(seaweedfs, service, f"3/{run}/small.txt")[0] == b"below the threshold"
    assert any(
        line.startswith(f"PUT {API}/artifacts/3/{run}/small.txt") for line in service.requests_logged()
    )


def test_small_file_trees_go_in_batches_into_s3(
    service: Service, seaweedfs: SeaweedFS, client: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Our client batches a tree's small files; the server writes each as its own S3 object."""
    run = uuid.uuid4().hex
    files = {f"d{i % 3}/f{i}.bin": random_bytes(1000 + i, seed=i) for i in range(30)}
    for rel, data in files.items():
        (tmp_path / "src" / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "src" / rel).write_bytes(data)
    with ArtifactStore(f"{service.url}{API}/artifacts/9/{run}") as store:
        store.log_artifacts(str(tmp_path / "src"))
        out = Path(store.download_artifacts("", str(tmp_path / "dst")))
    for rel, data in files.items():
        assert stored(seaweedfs, service, f"9/{run}/{rel}")[0] == data
        assert (out / rel).read_bytes() == data
    logged = [line for line in service.requests_logged() if run in line]
    assert any(line.startswith(f"POST {API}/batch/upload/9/{run}") for line in logged)
    assert any(line.startswith(f"POST {API}/batch/download/9/{run}") for line in logged)
    assert not any(line.startswith("PUT ") for line in logged)


def test_batch_members_into_s3_are_checked_before_any_is_written(
    service: Service, seaweedfs: SeaweedFS
) -> None:
    """Small members go to S3 in groups (obstore batches): each is checked against its SHA-256 first."""
    import hashlib
    import io

    from mlartifacts._tar import write_members

    run = uuid.uuid4().hex
    good = {f"f{i}.bin": random_bytes(2000 + i, seed=i) for i in range(5)}

    def tar(members: dict[str, bytes], digests: dict[str, str]) -> bytes:
        return b"".join(
            write_members(
                (name, len(data), io.BytesIO(data), digests[name]) for name, data in members.items()
            )
        )

    right = {name: hashlib.sha256(data).hexdigest() for name, data in good.items()}
    url = f"{service.url}{API}/batch/upload/9/{run}"
    wrong = {**right, "f3.bin": hashlib.sha256(b"something else").hexdigest()}
    refused = requests.post(
        url, data=tar(good, wrong), headers={"Content-Type": "application/x-tar"}, timeout=60
    )
    assert refused.status_code == 400 and "f3.bin" in refused.json()["message"]
    listed = seaweedfs.client().list_objects_v2(Bucket=service.bucket, Prefix=f"{service.prefix}/9/{run}/")
    assert listed.get("KeyCount", 0) == 0  # the whole group was refused before any of it was written
    accepted = requests.post(
        url, data=tar(good, right), headers={"Content-Type": "application/x-tar"}, timeout=60
    )
    assert accepted.status_code == 200 and accepted.json() == {
        "files": 5,
        "bytes": sum(map(len, good.values())),
    }
    for name, data in good.items():
        assert stored(seaweedfs, service, f"9/{run}/{name}")[0] == data


def test_a_batch_member_changed_in_s3_is_refused_by_the_client(
    service: Service, seaweedfs: SeaweedFS, client: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The server reads small members through S3's batch, which checks each GET's recorded digest;
    a member that fails it is streamed with its recorded digest instead, and the client refuses it."""
    import hashlib

    from mlartifacts.errors import IntegrityError

    run = uuid.uuid4().hex
    files = {f"f{i}.bin": random_bytes(3000 + i, seed=60 + i) for i in range(8)}
    with ArtifactStore(f"{service.url}{API}/artifacts/9/{run}") as store:
        for name, data in files.items():
            store.write_bytes(name, data)
    admin, key = seaweedfs.client(), f"{service.prefix}/9/{run}/f5.bin"
    got = admin.get_object(Bucket=service.bucket, Key=key)
    flipped = bytearray(got["Body"].read())
    flipped[11] ^= 0xFF
    admin.put_object(Bucket=service.bucket, Key=key, Body=bytes(flipped), Metadata=got["Metadata"])
    with (
        ArtifactStore(f"{service.url}{API}/artifacts/9/{run}") as store,
        pytest.raises(IntegrityError, match=r"f5\.bin") as caught,
    ):
        store.download_artifacts("", str(tmp_path / "dst"))
    assert hashlib.sha256(files["f5.bin"]).hexdigest() in str(caught.value)
    assert not (tmp_path / "dst" / "f5.bin").exists()
    logged = [line for line in service.requests_logged() if run in line]
    assert any(line.startswith(f"POST {API}/batch/download/9/{run}") for line in logged)


def test_presigned_get_is_served_by_storage(service: Service, seaweedfs: SeaweedFS) -> None:
    run = uuid.uuid4().hex
    data = random_bytes(3 * MiB + 7)
    requests.put(f"{service.url}{API}/artifacts/4/{run}/w.bin", data=data, timeout=30).raise_for_status()
    answer = requests.get(f"{service.url}{API}/presigned/4/{run}/w.bin", timeout=10).json()
    assert answer["url"].startswith(f"{seaweedfs.endpoint}/{service.bucket}/{service.prefix}/4/{run}/w.bin?")
    assert answer["file_size"] == len(data)
    fetched = requests.get(answer["url"], headers=answer["headers"], timeout=30)
    assert fetched.status_code == 200
    assert fetched.content == data
    assert 'filename="w.bin"' in fetched.headers["Content-Disposition"]
    # The URL is signed: tampering with the key is refused by storage.
    tampered = requests.get(answer["url"].replace("w.bin", "x.bin"), timeout=30)
    assert tampered.status_code == 403


def test_presigned_ranged_download_skips_the_server(
    service: Service, client: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    run = uuid.uuid4().hex
    data = random_bytes(6 * MiB + 5)
    requests.put(f"{service.url}{API}/artifacts/5/{run}/blob.bin", data=data, timeout=30).raise_for_status()
    client.setenv("MLFLOW_ENABLE_PROXY_MULTIPART_DOWNLOAD", "true")
    settings = Settings(ranged_download_threshold=MiB, ranged_download_chunksize=2 * MiB)
    with ArtifactStore(f"{service.url}{API}/artifacts/5/{run}", settings=settings) as store:
        out = store.download_file("blob.bin", str(tmp_path / "blob.bin"))
    assert Path(out).read_bytes() == data
    fetched = [line for line in service.requests_logged() if f"/5/{run}/blob.bin" in line]
    assert fetched[0].startswith("PUT ")
    assert any(line.startswith(f"GET {API}/presigned/5/{run}/blob.bin") for line in fetched)
    assert not any(line.startswith(f"GET {API}/artifacts/5/{run}/blob.bin") for line in fetched)


def test_abort_leaves_no_incomplete_upload(service: Service, seaweedfs: SeaweedFS) -> None:
    run = uuid.uuid4().hex
    created = requests.post(
        f"{service.url}{API}/mpu/create/6/{run}", json={"path": "/local/big.bin", "num_parts": 2}, timeout=10
    ).json()
    assert [c["part_number"] for c in created["credentials"]] == [1, 2]
    assert [u["UploadId"] for u in pending(seaweedfs, f"{service.prefix}/6/{run}/")] == [created["upload_id"]]
    part = requests.put(created["credentials"][0]["url"], data=random_bytes(5 * MiB), timeout=30)
    assert part.status_code == 200
    aborted = requests.post(
        f"{service.url}{API}/mpu/abort/6/{run}",
        json={"path": "/local/big.bin", "upload_id": created["upload_id"]},
        timeout=10,
    )
    assert aborted.status_code == 200
    assert pending(seaweedfs, f"{service.prefix}/6/{run}/") == []
    listing = requests.get(f"{service.url}{API}/artifacts", params={"path": f"6/{run}"}, timeout=10).json()
    assert listing == {}


def test_failed_part_aborts_the_upload(
    service: Service, seaweedfs: SeaweedFS, client: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A part storage refuses for good: the client aborts, and no object or upload is left."""
    from mlartifacts.errors import ArtifactError

    client.setenv("MLFLOW_ENABLE_PROXY_MULTIPART_UPLOAD", "true")
    run = uuid.uuid4().hex
    (tmp_path / "model.bin").write_bytes(random_bytes(12 * MiB))
    from mlartifacts.client import _plugin

    original = _plugin.request

    def corrupt_part_two(method: str, url: str, **kwargs: Any) -> Any:
        if method == "PUT" and "partNumber=2" in url:
            url = url.replace("X-Amz-Signature=", "X-Amz-Signature=0")  # storage refuses the signature
        return original(method, url, **kwargs)

    client.setattr(_plugin, "request", corrupt_part_two)
    settings = Settings(max_retries=1, retry_backoff=0.01)
    with (
        ArtifactStore(f"{service.url}{API}/artifacts/7/{run}", settings=settings) as store,
        pytest.raises(ArtifactError, match="part 2"),
    ):
        store.log_artifact(str(tmp_path / "model.bin"))
    client.undo()
    assert pending(seaweedfs, f"{service.prefix}/7/{run}") == []
    assert any(line.startswith(f"POST {API}/mpu/abort/7/{run}") for line in service.requests_logged())
    objects = seaweedfs.client().list_objects_v2(Bucket=service.bucket, Prefix=f"{service.prefix}/7/{run}")
    assert objects.get("KeyCount", 0) == 0


# -- presigned transfers by /server-info, and falling back to the server ----------------------------


def test_http_uri_goes_straight_to_s3_by_server_info(
    service: Service, seaweedfs: SeaweedFS, client: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """No MLflow variable set: an http:// URI follows /server-info, uploads and downloads alike."""
    run = uuid.uuid4().hex
    data = random_bytes(12 * MiB + 5)
    (tmp_path / "model.bin").write_bytes(data)
    with ArtifactStore(f"{service.url}{API}/artifacts/10/{run}") as store:
        store.log_artifact(str(tmp_path / "model.bin"))
        out = store.download_file("model.bin", str(tmp_path / "back.bin"))
    assert Path(out).read_bytes() == data
    body, etag = stored(seaweedfs, service, f"10/{run}/model.bin")
    assert body == data and etag.endswith("-3")
    logged = [line for line in service.requests_logged() if run in line]
    assert any(line.startswith(f"POST {API}/mpu/complete/10/{run}") for line in logged)
    assert any(line.startswith(f"GET {API}/presigned/10/{run}/model.bin") for line in logged)
    assert not any(line.startswith(("PUT ", f"GET {API}/artifacts/10/{run}/model.bin")) for line in logged)


def test_presigned_transfers_turned_off(
    service: Service, seaweedfs: SeaweedFS, client: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    client.setenv("MLARTIFACTS_PRESIGNED_TRANSFERS", "false")
    run = uuid.uuid4().hex
    data = random_bytes(12 * MiB)
    (tmp_path / "model.bin").write_bytes(data)
    with ArtifactStore(f"{service.url}{API}/artifacts/11/{run}") as store:
        store.log_artifact(str(tmp_path / "model.bin"))
        assert store.read_bytes("model.bin") == data
    assert stored(seaweedfs, service, f"11/{run}/model.bin")[0] == data
    logged = [line for line in service.requests_logged() if run in line]
    assert any(line.startswith(f"PUT {API}/artifacts/11/{run}/model.bin") for line in logged)
    assert not any("/mpu/" in line or "/presigned/" in line for line in logged)


def test_storage_unreachable_from_the_client_falls_back_to_the_server(
    service: Service, seaweedfs: SeaweedFS, client: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The client reaches the service but not the storage its presigned URLs name.

    Here the client's only way out is an HTTP proxy that is down (nothing listens on
    its port), with the service exempt (NO_PROXY): as for a private storage endpoint
    that only the server can route to. Uploads and downloads go through the server.
    """
    from mlartifacts.client import plugin

    plugin.reset()  # storage hosts reached by earlier tests are not known to be reachable
    client.setenv("HTTP_PROXY", f"http://127.0.0.1:{free_port()}")
    client.setenv("NO_PROXY", "localhost")
    port = urlsplit(service.url).port
    run = uuid.uuid4().hex
    data = random_bytes(12 * MiB + 9)
    (tmp_path / "model.bin").write_bytes(data)
    try:
        with ArtifactStore(f"http://localhost:{port}{API}/artifacts/12/{run}") as store:
            store.log_artifact(str(tmp_path / "model.bin"))
            out = store.download_file("model.bin", str(tmp_path / "back.bin"))
    finally:
        plugin.reset()
        client.delenv("HTTP_PROXY")  # the admin client below goes to SeaweedFS directly
    assert Path(out).read_bytes() == data
    assert stored(seaweedfs, service, f"12/{run}/model.bin")[0] == data
    logged = [line for line in service.requests_logged() if run in line]
    assert any(line.startswith(f"POST {API}/mpu/create/12/{run}") for line in logged)
    assert any(line.startswith(f"POST {API}/mpu/abort/12/{run}") for line in logged)
    assert any(line.startswith(f"PUT {API}/artifacts/12/{run}/model.bin") for line in logged)
    assert any(line.startswith(f"GET {API}/artifacts/12/{run}/model.bin") for line in logged)
    assert pending(seaweedfs, f"{service.prefix}/12/{run}") == []


# -- TLS on the storage side -----------------------------------------------------------------


@pytest.fixture(scope="module")
def tls_service(seaweedfs: SeaweedFS, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    """A server whose destination is SeaweedFS's HTTPS port (self-signed; the server skips the check)."""
    if seaweedfs.https_endpoint is None:
        pytest.skip("openssl is missing: no HTTPS port on the test SeaweedFS")
    env = server_env(seaweedfs, seaweedfs.https_endpoint, MLFLOW_S3_IGNORE_TLS="true")
    running = start_service(tmp_path_factory.mktemp("s3-tls-service"), seaweedfs, env)
    try:
        yield running
    finally:
        running.process.stop()


@pytest.mark.parametrize("trust", ["MLFLOW_S3_IGNORE_TLS", "AWS_CA_BUNDLE", None])
def test_part_puts_follow_the_storage_tls_settings(
    tls_service: Service, seaweedfs: SeaweedFS, client: pytest.MonkeyPatch, tmp_path: Path, trust: str | None
) -> None:
    from mlartifacts.errors import ArtifactError

    client.setenv("MLFLOW_ENABLE_PROXY_MULTIPART_UPLOAD", "true")
    if trust == "MLFLOW_S3_IGNORE_TLS":
        client.setenv("MLFLOW_S3_IGNORE_TLS", "true")
    elif trust == "AWS_CA_BUNDLE":
        assert seaweedfs.ca_bundle is not None
        client.setenv("AWS_CA_BUNDLE", seaweedfs.ca_bundle)
    run = uuid.uuid4().hex
    data = random_bytes(12 * MiB)
    (tmp_path / "model.bin").write_bytes(data)
    settings = Settings(max_retries=1, retry_backoff=0.01)
    with ArtifactStore(f"{tls_service.url}{API}/artifacts/8/{run}", settings=settings) as store:
        if trust is None:  # the self-signed certificate is not trusted by default
            with pytest.raises(ArtifactError, match=r"(?i)certificate") as caught:
                store.log_artifact(str(tmp_path / "model.bin"))
            message = str(caught.value)
            assert "part " in message and "X-Amz-Signature=***" in message  # says where, not the secret
            assert re.search(r"X-Amz-Signature=(?!\*\*\*)", message) is None
            assert pending(seaweedfs, f"{tls_service.prefix}/8/{run}") == []
            return
        store.log_artifact(str(tmp_path / "model.bin"))
    assert stored(seaweedfs, tls_service, f"8/{run}/model.bin")[0] == data
    assert not any(line.startswith("PUT ") for line in tls_service.requests_logged() if run in line)


# -- gc of incomplete uploads ---------------------------------------------------------------------


def test_gc_sweeps_incomplete_uploads_under_the_destination(
    seaweedfs: SeaweedFS, aws_env: pytest.MonkeyPatch
) -> None:
    admin = seaweedfs.client()
    prefix = f"gc/{uuid.uuid4().hex}"
    inside = admin.create_multipart_upload(Bucket=seaweedfs.bucket, Key=f"{prefix}/dest/1/r/model.bin")
    outside = admin.create_multipart_upload(Bucket=seaweedfs.bucket, Key=f"{prefix}/destination-2/x.bin")
    env = server_env(seaweedfs, seaweedfs.endpoint)
    destination = f"s3://{seaweedfs.bucket}/{prefix}/dest"

    def gc(*args: str) -> subprocess.CompletedProcess[str]:
        cmd = [sys.executable, "-c", "from mlartifacts.cli import main; main()", "gc",
               "--artifacts-destination", destination, *args]  # fmt: skip
        return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)

    time.sleep(1.1)  # S3 dates uploads to the second
    young = gc("--incomplete-uploads-older-than", "1h", "--dry-run")
    assert young.returncode == 0, young.stderr
    assert inside["UploadId"] not in young.stdout
    dry = gc("--incomplete-uploads-older-than", "1", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert inside["UploadId"] in dry.stdout and "1/r/model.bin" in dry.stdout
    assert outside["UploadId"] not in dry.stdout  # "dest" is not a prefix of "destination-2"
    assert len(pending(seaweedfs, prefix)) == 2
    swept = gc("--incomplete-uploads-older-than", "1")
    assert swept.returncode == 0, swept.stderr
    assert inside["UploadId"] in swept.stdout
    assert [u["UploadId"] for u in pending(seaweedfs, prefix)] == [outside["UploadId"]]
    admin.abort_multipart_upload(Bucket=seaweedfs.bucket, Key=f"{prefix}/destination-2/x.bin",
                                 UploadId=outside["UploadId"])  # fmt: skip


@pytest.mark.parametrize("secret", ["wrong-secret", None], ids=["wrong-credentials", "no-credentials"])
def test_server_refuses_to_start_when_storage_refuses_its_credentials(
    seaweedfs: SeaweedFS, tmp_path: Path, secret: str | None
) -> None:
    # Started anyway, it would answer every client with an error reading as the client's own.
    env = server_env(seaweedfs, seaweedfs.endpoint)
    if secret is None:
        del env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"]
    else:
        env["AWS_SECRET_ACCESS_KEY"] = secret
    done = subprocess.run(
        [sys.executable, "-c", "from mlartifacts.cli import main; main()", "server",
         "--artifacts-destination", f"s3://{seaweedfs.bucket}/x", "--port", str(free_port())],
        capture_output=True, text=True, timeout=120, check=False, env=env,
    )  # fmt: skip
    assert done.returncode == 1, done.stderr
    assert "refused the server's credentials" in done.stderr
    assert "Traceback" not in done.stderr


# -- MLFLOW_ARTIFACT_UPLOAD_DOWNLOAD_TIMEOUT with the storage hung ---------------------------------

HUNG_TIMEOUT = 3
HUNG_MARGIN = 5.0  # a correctness bound (the deadline plus a few seconds), not a speed figure


@pytest.fixture(scope="module")
def hung_service(
    seaweedfs: SeaweedFS, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Service, Relay]]:
    """A service whose storage sits behind a relay that the tests stop (SIGSTOP) to hang it."""
    tmp = tmp_path_factory.mktemp("hung-service")
    port = urlsplit(seaweedfs.endpoint).port
    assert port is not None
    with Relay(port, tmp / "relay.log") as relay:
        env = server_env(
            seaweedfs,
            f"http://127.0.0.1:{relay.port}",
            MLFLOW_ARTIFACT_UPLOAD_DOWNLOAD_TIMEOUT=str(HUNG_TIMEOUT),
        )
        running = start_service(tmp, seaweedfs, env)
        try:
            yield running, relay
        finally:
            running.process.stop()


def test_a_put_to_hung_storage_answers_504_at_the_deadline(
    hung_service: tuple[Service, Relay], seaweedfs: SeaweedFS
) -> None:
    service, relay = hung_service
    url = f"{service.url}{API}/artifacts/hung/put.bin"
    started = time.monotonic()
    with relay.hung():
        # Larger than one part: a streamed body, so a late storage must not complete it.
        answer = requests.put(url, data=iter([b"p" * MiB] * 12), timeout=60)
        elapsed = time.monotonic() - started
    assert answer.status_code == 504, answer.text
    assert answer.json()["error_code"] == "DEADLINE_EXCEEDED"
    assert elapsed < HUNG_TIMEOUT + HUNG_MARGIN, f"answered after {elapsed:.1f} s"
    time.sleep(1)  # the abandoned calls resume: still nothing may become visible
    listed = seaweedfs.client().list_objects_v2(Bucket=service.bucket, Prefix=f"{service.prefix}/hung/put")
    assert listed.get("KeyCount", 0) == 0


def test_a_get_from_hung_storage_answers_504_at_the_deadline(hung_service: tuple[Service, Relay]) -> None:
    service, relay = hung_service
    url = f"{service.url}{API}/artifacts/hung/get.bin"
    assert requests.put(url, data=b"g" * 1000, timeout=30).status_code == 200
    started = time.monotonic()
    with relay.hung():
        answer = requests.get(url, timeout=60)
        elapsed = time.monotonic() - started
    assert answer.status_code == 504, answer.text
    assert elapsed < HUNG_TIMEOUT + HUNG_MARGIN, f"answered after {elapsed:.1f} s"


def test_a_get_stalled_midway_is_cut_at_the_deadline(
    hung_service: tuple[Service, Relay], seaweedfs: SeaweedFS
) -> None:
    service, relay = hung_service
    url = f"{service.url}{API}/artifacts/hung/big.bin"
    size = 16 * MiB  # more than the sockets between here and the storage buffer
    seaweedfs.client().put_object(
        Bucket=service.bucket, Key=f"{service.prefix}/hung/big.bin", Body=random_bytes(size, seed=21)
    )
    started = time.monotonic()
    with requests.get(url, stream=True, timeout=60) as answer:
        assert answer.status_code == 200
        body = answer.raw
        received = len(body.read(MiB))
        with relay.hung(), pytest.raises(requests.exceptions.RequestException) as cut:
            received += len(_read_all(body))
        elapsed = time.monotonic() - started
    assert cut.value is not None and received < size
    assert elapsed < HUNG_TIMEOUT + HUNG_MARGIN, f"cut after {elapsed:.1f} s"


def _read_all(body: Any) -> bytes:
    import urllib3

    try:
        return bytes(body.read())
    except (urllib3.exceptions.HTTPError, OSError) as exc:
        raise requests.exceptions.ChunkedEncodingError(str(exc)) from exc


def test_a_killed_proxied_upload_resumes(
    service: Service, seaweedfs: SeaweedFS, client: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Through the service to S3: a client killed midway, run again, sends only the missing parts."""
    import json
    import signal

    from mlartifacts import default_registry
    from mlartifacts.testing._resume_tests import journal_entries

    client.setenv("MLFLOW_ENABLE_PROXY_MULTIPART_UPLOAD", "true")
    state = tmp_path / "state"
    client.setenv("MLARTIFACTS_STATE_DIR", str(state))
    run = uuid.uuid4().hex
    uri = f"{service.url}{API}/artifacts/9/{run}"
    data = random_bytes(30 * MiB + 7)  # 7 parts of 5 MiB
    (tmp_path / "model.bin").write_bytes(data)
    child_code = (
        "import sys, time\n"
        "from mlartifacts import ArtifactStore, Settings\n"
        "class Slow:\n"
        "    def begin(self, *a): pass\n"
        "    def update(self, n): time.sleep(0.5)\n"
        "    def file_done(self, p): pass\n"
        "    def end(self): pass\n"
        "with ArtifactStore(sys.argv[1], settings=Settings(max_workers=1)) as store:\n"
        "    store.upload_file(sys.argv[2], 'model.bin', progress=Slow())\n"
    )
    child = subprocess.Popen([sys.executable, "-c", child_code, uri, str(tmp_path / "model.bin")])
    try:
        deadline = time.monotonic() + 60
        while len(journal_entries(state, "upload")[1]) < 2:
            assert child.poll() is None, "the child ended before it was killed"
            assert time.monotonic() < deadline
            time.sleep(0.02)
        child.send_signal(signal.SIGKILL)
    finally:
        child.kill()
        child.wait()
    journaled = {entry["n"] for entry in journal_entries(state, "upload")[1]}
    assert len(pending(seaweedfs, f"{service.prefix}/9/{run}")) == 1
    sent: list[int] = []

    def count(hook_name: str, hook_impls: Any, kwargs: Any) -> None:
        if hook_name == "upload_part":
            sent.append(kwargs["part_number"])

    undo = default_registry().pm.add_hookcall_monitoring(count, lambda *args: None)
    try:
        with ArtifactStore(uri) as store:
            store.log_artifact(str(tmp_path / "model.bin"))
    finally:
        undo()
    assert sorted(sent) == sorted(set(range(1, 8)) - journaled)
    assert stored(seaweedfs, service, f"9/{run}/model.bin")[0] == data
    assert pending(seaweedfs, f"{service.prefix}/9/{run}") == []
    assert any(f"/mpu/parts/9/{run}" in line for line in service.requests_logged())
    assert json.loads(requests.get(f"{service.url}/api/3.0/mlflow/server-info", timeout=10).text)[
        "mlartifacts"
    ]["list_parts"]
